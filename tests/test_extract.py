"""Extraction (bot/extract.py) on posts written for these tests: deadlines, meetings, conflicts, summary, robustness."""

import json
import time
from datetime import UTC, datetime

import pytest

from bot import extract
from bot.message import read_message
from bot.rules import load_rules

RULES = load_rules()
RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)


def post(body: str, *, date: str, subject: str = "[wg] news") -> extract.Extraction:
    raw = (
        f"From: Chair <chair@example.org>\nTo: wg@lists.example.org\nSubject: {subject}\nDate: {date}\n"
        f"Message-ID: <t@example.org>\nContent-Type: text/plain; charset=utf-8\n\n{body}"
    ).encode()
    ex = extract.analyze(read_message(raw, received=RECEIVED, max_body_bytes=5_000_000), RULES)
    assert "extraction failed: see the log" not in ex.explain  # the safety net must not hide a bug
    return ex


def test_feedback_deadline_and_timed_workshop():
    # The examples: a weekday-pinned feedback deadline and a workshop with start and end in UTC.
    ex = post(
        "Members are invited to read the draft and provide feedback until Monday 14 September COB.\n\n"
        "The workshop will be on Tuesday 17 November, from 12:50 to 14:20 UTC.\n",
        date="Thu, 10 Sep 2020 16:00:00 +0000",
    )
    assert [(d.due, d.approx, d.past, d.conflict) for d in ex.deadlines] == [("2020-09-14", False, False, None)]
    assert "feedback" in ex.deadlines[0].what
    assert [(m.start, m.end, m.conflict) for m in ex.meetings] == [
        ("2020-11-17T12:50:00+00:00", "2020-11-17T14:20:00+00:00", None)
    ]


def test_weekday_conflict_with_local_offset():
    # "Wednesday Nov 28" in 2019 (a Thursday): kept, flagged, start with the written UTC+1 offset.
    ex = post(
        "Our session at the annual forum is scheduled for Wednesday Nov 28, 15:00-16:30 local time (UTC+1).\n",
        date="Mon, 07 Oct 2019 09:00:00 +0000",
    )
    (m,) = ex.meetings
    assert m.start == "2019-11-27T15:00:00+01:00" and m.end == "2019-11-27T16:30:00+01:00"
    assert m.conflict and "Thursday" in m.conflict


def test_est_in_july_is_flagged():
    # EST in summer: read as New York local time (EDT) and flagged.
    ex = post("The steering call is on 15 July at 10:00 EST.\n", date="Mon, 01 Jul 2024 09:00:00 +0000")
    (m,) = ex.meetings
    assert m.start == "2024-07-15T10:00:00-04:00" and m.conflict and "EST" in m.conflict


def test_aoe_deadline_and_pm_range_meeting():
    # An AoE deadline keeps its day; "3-6pm CET" is a meeting from 15:00 to 18:00 +01:00.
    ex = post(
        "Abstracts are due 12 March (23:59 AoE).\n\nThe tutorial meeting is on 20 March, 3-6pm CET.\n",
        date="Mon, 01 Mar 2027 09:00:00 +0000",
    )
    assert [d.due[:10] for d in ex.deadlines] == ["2027-03-12"]
    assert [(m.start, m.end) for m in ex.meetings] == [("2027-03-20T15:00:00+01:00", "2027-03-20T18:00:00+01:00")]


def test_multi_day_event_and_range_across_months():
    # A conference over days is one meeting with start and end days, also across a month end.
    ex = post(
        "The annual conference will be held in Lisbon from 30 September to 2 October.\n\n"
        "Our hackathon takes place on 9-11 November 2026.\n",
        date="Tue, 05 May 2026 09:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-09-30", "2026-10-02"), ("2026-11-09", "2026-11-11")]


def test_agenda_slots_are_one_meeting_each():
    # An agenda of timed sessions: one meeting per slot, a slot past midnight UTC ends the next day.
    ex = post(
        "The kick-off meeting is held twice to cover all time zones:\n\n"
        "- Session A: 3 June 2026, 15:00-16:00 UTC\n"
        "- Session B: 4 June 2026, 23:30-00:30 UTC\n",
        date="Mon, 25 May 2026 09:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [
        ("2026-06-03T15:00:00+00:00", "2026-06-03T16:00:00+00:00"),
        ("2026-06-04T23:30:00+00:00", "2026-06-05T00:30:00+00:00"),
    ]


def test_agenda_lines_under_a_dated_meeting_are_slots():
    # Timed agenda lines below a dated session are one meeting each, on that day.
    ex = post(
        "Agenda for the session on Tuesday, 17 February 2026\n\n"
        "09:00-09:30 UTC  Welcome\n09:30-10:30 UTC  Draft status\n10:30-11:00 UTC  AOB\n",
        date="Mon, 09 Feb 2026 10:00:00 +0000",
        subject="Agenda for the session",
    )
    assert [(m.start[11:16], m.end[11:16] if m.end else None, m.what) for m in ex.meetings] == [
        ("09:00", "09:30", "Welcome"), ("09:30", "10:30", "Draft status"), ("10:30", "11:00", "AOB")
    ]


def test_record_of_dates_and_invitation_fields():
    # "Key: date" lines: the key says what each date is; in an invitation a "Date:" field is the meeting.
    ex = post(
        "Important dates\nSubmission deadline: June 1, 2027\nNotification: July 15, 2027\nWorkshop: November 26, 2027\n",
        date="Mon, 01 Mar 2027 10:00:00 +0000",
        subject="CFP: workshop on mail",
    )
    assert [(d.due, d.what) for d in ex.deadlines] == [("2027-06-01", "Submission deadline"), ("2027-07-15", "Notification")]
    assert [(m.start, m.what) for m in ex.meetings] == [("2027-11-26", "Workshop")]
    ex = post("Date: 2027-03-10\nTime: 16:00 UTC (11:00 ET)\n\nAgenda:\n1. Scribe\n", date="Mon, 08 Mar 2027 10:00:00 +0000",
              subject="[wg] agenda")
    assert [(m.start, m.what) for m in ex.meetings] == [("2027-03-10T16:00:00+00:00", "[wg] agenda".replace("[wg] ", ""))]


def test_windows_weeks_and_abbreviations():
    # A submission window closes on its last day; "w/c 3 May" names a week; "p.m." does not end the sentence.
    ex = post(
        "Comments must be received by 11:59 p.m. Eastern Time on May 28, 2027. Proposals may be submitted from "
        "3 May to 21 May 2027. Please plan travel for the w/c 7 June. The plenary is on 9 June, 10.00-12.00 CEST.\n",
        date="Mon, 26 Apr 2027 10:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2027-05-28", "2027-05-21"]
    assert [m.start for m in ex.meetings] == ["2027-06-09T10:00:00+02:00"]


def test_weekday_inside_a_dated_meeting_week():
    # "on Wednesday" inside a dated event week pins that Wednesday for a meeting; "by Monday" stays unpinned.
    ex = post(
        "The forum takes place in Berlin, 22-26 November. Our session is on Wednesday at 15:00 CET. "
        "Please send slides by Monday.\n",
        date="Mon, 05 Oct 2026 10:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2026-11-22", "2026-11-25T15:00:00+01:00"]
    assert ex.deadlines == ()


def test_subject_is_read_when_the_body_has_no_date():
    # "Reminder: comments due 5 May" over a note without dates: the subject gives the deadline.
    ex = post("Please send your comments on the attached draft to the chairs.\n", date="Mon, 26 Apr 2027 10:00:00 +0000",
              subject="Reminder: comments due 5 May")
    assert [d.due for d in ex.deadlines] == ["2027-05-05"]


def test_timeline_table():
    # A timeline table: openings and dash periods are no deadlines; the event's own year keeps it ahead.
    ex = post(
        "| Activity | Date |\n|---|---|\n| Call for proposals opens | 1 March |\n| Deadline for proposals | 15 April |\n"
        "| Evaluation of proposals | 16 April - 10 May |\n| Forum 2027 annual meeting | 6-10 December |\n",
        date="Mon, 01 Feb 2027 10:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2027-04-15"]
    assert [(m.start, m.end) for m in ex.meetings] == [("2027-12-06", "2027-12-10")]


def test_all_times_are_utc():
    # "All times are UTC" gives the zone to times written without one.
    ex = post("All times are UTC.\n\nThe opening session is on 3 March at 14:00.\n", date="Mon, 01 Feb 2027 10:00:00 +0000")
    assert [m.start for m in ex.meetings] == ["2027-03-03T14:00:00+00:00"]
    # Without it, a time without a zone gives the day only.
    ex = post("The opening session is on 3 March at 14:00.\n", date="Mon, 01 Feb 2027 10:00:00 +0000")
    assert [m.start for m in ex.meetings] == ["2027-03-03"]


def test_cancelled_meeting_is_dropped():
    # A cancelled call is not a meeting; the replacement date is.
    ex = post(
        "The call on 12 May is cancelled; we will meet on 19 May at 14:00 UTC instead. "
        "The group will not meet on 26 May.\n",
        date="Mon, 04 May 2026 09:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2026-05-19T14:00:00+00:00"]
    assert any("cancelled" in line for line in ex.explain)


def test_past_and_history():
    # A deadline a few days back is kept but past; what is told as history (received, took place) is dropped.
    ex = post(
        "Note that the deadline for comments was 3 March. We received five contributions by 2 March. "
        "The meeting took place on 6 March 2026.\n",
        date="Mon, 09 Mar 2026 09:00:00 +0000",
    )
    assert [(d.due, d.past) for d in ex.deadlines] == [("2026-03-03", True)]
    assert ex.meetings == ()
    assert sum("history" in line for line in ex.explain) == 2


def test_approx_and_periods():
    # "by mid-June" is an approximate deadline; "mid-July - late August" is a work period, not a deadline.
    ex = post(
        "Next steps:\n- By mid-June: publication of the questionnaire\n"
        "- Drafting of the report: mid-July - late August\n",
        date="Tue, 21 May 2024 09:00:00 +0000",
    )
    assert [(d.due, d.approx) for d in ex.deadlines] == [("2024-06-15", True)]


def test_dates_in_urls_and_quoted_headers_are_ignored():
    # Only prose counts: a date in a link or in a quoted reply header is no deadline.
    ex = post(
        "See the archive at https://lists.example.org/2026-05-20/deadline-20-may.html for details.\n\n"
        "From: Someone <s@example.org>\nDate: Wednesday, May 20, 2026 6:14 PM\nSubject: deadline\n\nold text\n",
        date="Mon, 11 May 2026 09:00:00 +0000",
    )
    assert ex.deadlines == () and ex.meetings == ()


def test_relative_days_pin_and_next_week_does_not():
    # "tomorrow" pins a day; "next week" does not.
    ex = post(
        "Please send your comments by tomorrow. We will meet again next week.\n",
        date="Mon, 04 May 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-05-05"]
    assert ex.meetings == ()


def test_replaced_dates_are_dropped():
    # "not 17 March", "previously 28 April": the old date is no item; an extension from/to keeps the new one.
    ex = post("Correction: the next call is on 18 March, not 17 March.\n", date="Mon, 01 Mar 2027 10:00:00 +0000")
    assert [m.start for m in ex.meetings] == ["2027-03-18"]
    ex = post(
        "Submissions are now due 5 May (previously 28 April). The deadline was extended from 28 April to 5 May.\n",
        date="Tue, 20 Apr 2027 10:00:00 +0000",
    )
    assert [(d.due, d.extended) for d in ex.deadlines] == [("2027-05-05", True)]


def test_extended_deadline():
    # "extended to" marks the deadline as extended.
    ex = post(
        "The deadline for nominations has been extended to 22 June.\n",
        date="Mon, 01 Jun 2026 09:00:00 +0000",
        subject="Nominations: deadline extended",
    )
    assert [(d.due, d.extended) for d in ex.deadlines] == [("2026-06-22", True)]
    assert ex.kind == "announcement"


def test_deadline_list_under_date_headings():
    # A list of dated items introduced as deadlines: each bullet is one deadline.
    ex = post(
        "The following deadlines were agreed:\n12 October:\n- Speaker lists\n19 October:\n"
        "- Final programme\n- Activity reports\n",
        date="Mon, 05 Oct 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-10-12", "2026-10-19", "2026-10-19"]
    assert ex.deadlines[2].what == "Activity reports"


def test_spanish_post():
    # A Spanish call with a date does not crash and yields the right deadline.
    ex = post(
        "Convocatoria 2027\n\nFecha límite de recepción de propuestas: hasta las 18:00 del 15 de marzo de 2027.\n"
        "Publicación de resultados: a partir del 2 de mayo de 2027.\n",
        date="Fri, 15 Jan 2027 12:00:00 -0600",
        subject="Convocatoria de proyectos",
    )
    assert [d.due for d in ex.deadlines] == ["2027-03-15"]
    assert ex.kind == "call_for_contributions"


def test_french_post():
    # A French post: the workshop is a meeting, the submission date a deadline.
    ex = post(
        "Date limite de soumission : 10 avril 2026.\n\nL'atelier aura lieu le 4 mai 2026 à 14h00 UTC.\n",
        date="Mon, 02 Mar 2026 09:00:00 +0100",
    )
    assert [d.due for d in ex.deadlines] == ["2026-04-10"]
    assert [m.start for m in ex.meetings] == ["2026-05-04T14:00:00+00:00"]


def test_calendar_invitation_block():
    # An Outlook-style "When:" line with an offset and a conference link is a timed meeting there.
    ex = post(
        "When: Thursday, 4 March 2027 13:00-14:00 (UTC+01:00) Amsterdam, Berlin\n"
        "Where: https://zoom.example/j/42?pwd=hunter2\n",
        date="Mon, 01 Mar 2027 10:00:00 +0000",
        subject="Invitation: steering group",
    )
    assert [(m.start, m.end, m.where) for m in ex.meetings] == [
        ("2027-03-04T13:00:00+01:00", "2027-03-04T14:00:00+01:00", "https://zoom.example/j/42?pwd=****")
    ]


def test_opening_and_publication_days_are_not_deadlines():
    # The day a system opens is no due date; a publication on the day of the post is the post itself.
    ex = post(
        "| Publicación de la convocatoria | 01/03/2027 |\n| Apertura del sistema | 08/03/2027 |\n"
        "| Fecha límite de envío | 29/03/2027 |\n",
        date="Mon, 01 Mar 2027 10:00:00 -0600",
        subject="Convocatoria 2027",
    )
    assert [d.due for d in ex.deadlines] == ["2027-03-29"]


def test_report_keeps_the_next_meeting():
    # A report drops the meeting it reports on, but keeps the next one, even on a title-like line.
    ex = post(
        "Minutes of the call of 3 May 2027\n\nPresent: A, B\n\nThe group reviewed the draft.\n\n"
        "Next meeting 17 May 2027 15:00 UTC\n",
        date="Mon, 03 May 2027 20:00:00 +0000",
        subject="Minutes of the call",
    )
    assert ex.kind == "meeting_report"
    assert [m.start for m in ex.meetings] == ["2027-05-17T15:00:00+00:00"]


def test_report_summary_masks_credentials():
    # A meeting report gets a summary (title, date, sections, decisions, next steps) with passwords masked.
    body = (
        "# Working group call, 4 March 2026\n\n"
        "## 1. Introduction\n\nThe recording of the call is online (password: Sesame42).\n\n"
        "## 2. Charter\n\nIt was agreed to adopt the revised charter (next call: meeting ID 123 456 789, "
        "passcode 987654).\n\n"
        "## 3. Next steps\n\n- Ana Lima to send the survey by 18 March.\n"
    )
    ex = post(body, date="Wed, 04 Mar 2026 18:00:00 +0000", subject="[wg] Minutes of the 4 March call")
    assert ex.kind == "meeting_report"
    data = json.dumps(extract.to_json(ex))
    assert "Sesame42" not in data and "987654" not in data and "****" in data
    (s,) = extract.to_json(ex)["summary"]
    assert s["date"] == "2026-03-04" and s["title"].startswith("Minutes")
    assert [x["heading"] for x in s["sections"]][:3] == ["1. Introduction", "2. Charter", "3. Next steps"]
    assert any("charter" in d for d in s["decisions"])
    assert any("survey" in n for n in s["next_steps"])
    assert [(a.who, a.due) for a in ex.action_items] == [("Ana Lima", "2026-03-18")]
    assert ex.meetings == ()  # the call the report is about


def test_links_have_labels():
    # Links keep a label: the Markdown text, or the words before the URL.
    ex = post(
        "Draft: [the background paper](https://example.org/paper.pdf)\n"
        "Register here: <https://example.org/register>\nJoin https://zoom.example/j/1?pwd=abc123\n",
        date="Mon, 04 May 2026 09:00:00 +0000",
    )
    assert [(link.label, link.url) for link in ex.links] == [
        ("the background paper", "https://example.org/paper.pdf"),
        ("Register here", "https://example.org/register"),
        ("Join", "https://zoom.example/j/1?pwd=****"),
    ]


def test_json_shape():
    # to_json gives exactly the keys of the `parse --json` contract.
    ex = post("Please register by 3 June.\n", date="Mon, 04 May 2026 09:00:00 +0000")
    data = extract.to_json(ex)
    assert set(data) == {"kind", "rules", "deadlines", "meetings", "action_items", "links", "summary"}
    assert set(data["deadlines"][0]) == {"due", "what", "who", "approx", "conflict", "past", "text"}
    assert data["summary"] == []


def test_backtracking_line_is_fast():
    # A 1 MB single line built from date-ish pieces is handled well under a second.
    for piece in ("12 March 15:00-16:30 UTC by ", "1 " , "May 1 - ", "Monday, the ", "a" * 50 + " "):
        body = piece * (1_000_000 // len(piece))
        started = time.perf_counter()
        post(body, date="Mon, 04 May 2026 09:00:00 +0000")
        assert time.perf_counter() - started < 1.0


def test_flood_of_dates_is_cut():
    # A megabyte of dated lines is read up to a cap, fast, and says so.
    body = "Please send comments by 5 May; the call is on 6 May at 15:00 UTC.\n" * 15000
    started = time.perf_counter()
    ex = post(body, date="Mon, 04 May 2026 09:00:00 +0000")
    assert time.perf_counter() - started < 1.0
    assert len(ex.deadlines) == 1 and len(ex.meetings) == 1 and len(ex.explain) <= 300


@pytest.mark.parametrize(
    "body",
    ["", "\x00\x01\x02", "31 February", "on 99 May", "29 February 2027", "| | | |\n" * 50, "Deadline:\n\n:\n",
     "From 10:00 to 9:00 UTC on 5 May", "UTC+99 5 May 10:00", "## \n#\n- \n1.\n"],
)
def test_never_raises(body):
    # Odd text gives an extraction, never an exception.
    ex = post(body, date="Mon, 04 May 2026 09:00:00 +0000")
    assert isinstance(ex, extract.Extraction)


def test_neighbouring_clauses_keep_their_own_date_and_what():
    # Two deadlines in one sentence, or a "...by <date>:" line over a link and another deadline: each date keeps
    # its own clause as 'what', and a date right before a colon is still a date.
    ex = post(
        "Sign up for the hackathon by May 4, and mentors please send a short bio by 6 May.\n\n"
        "Book your hotel room by June 2:\nhttps://example.org/hotels\nPosters are due 9 June.\n",
        date="Tue, 14 Apr 2026 10:00:00 +0000",
    )
    got = [(d.due, d.what) for d in ex.deadlines]
    assert got == [
        ("2026-05-04", "Sign up for the hackathon"),
        ("2026-05-06", "mentors please send a short bio"),
        ("2026-06-02", "Book your hotel room"),
        ("2026-06-09", "Posters are due"),
    ]


def test_relative_day_next_to_its_date_keeps_the_time():
    # "tomorrow, Thursday 21 May, at 09:30 UTC (11:30 CEST)": one timed meeting; a relative word that disagrees
    # with the date beside it is flagged.
    ex = post(
        "Reminder: our editorial call is tomorrow, Thursday 21 May, at 09:30 UTC (11:30 CEST).\n\n"
        "The review meeting is on 28 May (today) at 15:00 UTC.\n",
        date="Wed, 20 May 2026 08:00:00 +0000",
    )
    assert [(m.start, m.what, bool(m.conflict)) for m in ex.meetings] == [
        ("2026-05-21T09:30:00+00:00", "Reminder: our editorial call", False),
        ("2026-05-28T15:00:00+00:00", "The review meeting", True),
    ]


def test_action_items_are_never_empty():
    # An "Action items:" line is no action itself; each bullet under it is one, with its owner when named.
    ex = post(
        "The group met on 3 March and reviewed the roadmap.\n\nAction items:\n"
        "- Lena: collect the survey answers\n- Update the glossary (Omar)\n- Karl to draft the press note by 20 March\n",
        date="Thu, 05 Mar 2026 10:00:00 +0000",
        subject="[wg] Minutes of the 3 March call",
    )
    assert ex.kind == "meeting_report"
    assert all(a.what.strip() for a in ex.action_items)
    assert [(a.who, a.what, a.due) for a in ex.action_items] == [
        ("Karl", "draft the press note", "2026-03-20"),
        ("Lena", "collect the survey answers", None),
        ("Omar", "Update the glossary", None),
    ]


def test_call_mentioned_in_an_agenda_is_an_invitation():
    # An agenda that lists a "call for volunteers" and names no due date is an invitation, not a call.
    ex = post(
        "Agenda:\n1. Roadmap review\n2. Call for volunteers for the editing team (please send your name to Ada)\n\n"
        "Please join the meeting on 14 May at 13:00 UTC on Zoom.\n",
        date="Mon, 11 May 2026 08:00:00 +0000",
        subject="[wg] Editing team",
    )
    assert ex.rules[0] == "call_for_contributions" and ex.kind == "meeting_invitation"
    assert [m.start for m in ex.meetings] == ["2026-05-14T13:00:00+00:00"]


def test_report_of_a_call_keeps_what_comes_next():
    # "Notes from our Tuesday call" is a report; "last Tuesday's call" is not a day of the summit week; a training
    # the group will host is a meeting; "by 19/6" is a deadline.
    ex = post(
        "Here are my notes from last Tuesday's call (2 June).\n\nPresent: Ada, Bo, Cy.\n\n"
        "- Edits to the charter by 19/6, in the shared draft.\n"
        "- The summit in Porto (15-18 June) has confirmed our slot.\n"
        "- Bo will host a training on the new tracker on Thursday 11 June, 2-3pm UTC.\n",
        date="Thu, 04 Jun 2026 10:00:00 +0000",
        subject="[wg] Notes from the editors call",
    )
    assert ex.kind == "meeting_report"
    assert [d.due for d in ex.deadlines] == ["2026-06-19"]
    assert [m.start for m in ex.meetings] == ["2026-06-15", "2026-06-11T14:00:00+00:00"]


def test_spanish_event_that_will_be_held():
    # "se realizará del 3 al 5 de septiembre" is an event, even in a call with a due date.
    ex = post(
        "Abrimos la convocatoria a ponencias para el encuentro regional, que se realizará del 3 al 5 de "
        "septiembre en Quito. La fecha límite es el 30 de junio.\n",
        date="Mon, 01 Jun 2026 10:00:00 +0000",
        subject="Convocatoria a ponencias",
    )
    assert ex.kind == "call_for_contributions"
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-09-03", "2026-09-05")]
    assert [d.due for d in ex.deadlines] == ["2026-06-30"]


def test_postponed_meeting_keeps_only_the_new_date():
    # The day a meeting was moved away from is no meeting; the day it moved to is.
    ex = post(
        "The editors meeting planned for Monday, 12 October has been postponed because of the holiday.\n\n"
        "It will now take place on Wednesday 14 October at 10:00 UTC.\n\n"
        "The plenary was moved from 20 October to 27 October.\n",
        date="Thu, 08 Oct 2026 10:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2026-10-14T10:00:00+00:00", "2026-10-27"]


def test_programme_under_a_dated_heading():
    # A dated heading over timed lines, with "All times are in UTC+2": one meeting per slot, breaks left out;
    # "Day 1 - Monday 7 September" is the 7th, not a range from the 1st.
    ex = post(
        "Here is the final programme. All times are in UTC+2.\n\n"
        "Day 1 - Monday 7 September 2026\n\n"
        "10:00 - 11:00   Keynote on open standards\n11:00 - 11:20   Coffee break\n23:00 - 00:30   Late panel for the Americas\n",
        date="Mon, 31 Aug 2026 10:00:00 +0000",
        subject="[conf] Programme for day 1",
    )
    assert ex.kind == "meeting_invitation"
    assert [(m.start, m.end) for m in ex.meetings] == [
        ("2026-09-07T10:00:00+02:00", "2026-09-07T11:00:00+02:00"),
        ("2026-09-07T23:00:00+02:00", "2026-09-08T00:30:00+02:00"),
    ]


def test_conference_days_and_a_session_on_its_first_day():
    # A conference over days and a timed workshop on its first day are two meetings.
    ex = post(
        "The summit will take place from 9 to 12 November 2026 in Lyon.\n\n"
        "A pre-summit workshop will be held on Monday 9 November, 14:00-16:00 UTC.\n",
        date="Mon, 14 Sep 2026 10:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [
        ("2026-11-09", "2026-11-12"), ("2026-11-09T14:00:00+00:00", "2026-11-09T16:00:00+00:00")
    ]


def test_wrapped_sentence_ending_in_a_colon_and_publication_going_online():
    # "...fill in the form by" / "Friday 9 October, with your topics:" is one sentence: the date is due; a page that
    # goes online on a day is due that day; "Reviewers wanted" is a call.
    ex = post(
        "We need four reviewers for the glossary. If you can help, fill in the form by\n"
        "Friday 9 October, with your topics:\nhttps://example.org/form\n\n"
        "The final glossary will go online on 2026-10-30.\n",
        date="Mon, 28 Sep 2026 10:00:00 +0000",
        subject="[wg] Reviewers wanted for the glossary",
    )
    assert ex.kind == "call_for_contributions"
    assert [d.due for d in ex.deadlines] == ["2026-10-09", "2026-10-30"]


def test_post_that_no_rule_knows_but_names_a_meeting_ahead():
    # No rule hits, yet the post names a timed meeting ahead: an invitation, not chatter.
    ex = post(
        "Hi everyone, a short sync before the release will take place this Wednesday at 16:00 UTC.\n",
        date="Mon, 05 Oct 2026 10:00:00 +0000",
        subject="[wg] quick sync",
    )
    assert ex.kind == "meeting_invitation" and [m.start for m in ex.meetings] == ["2026-10-07T16:00:00+00:00"]


def test_reply_that_moves_a_call():
    # A reply that moves a call is news: an invitation for the new day, at the time it gives, and not the old day.
    ex = post(
        "Sorry all, I am shifting our editing call from Tuesday 3 March to Wednesday 4 March, same time (09:00 UTC).\n",
        date="Fri, 27 Feb 2026 10:00:00 +0000",
        subject="Re: [wg] editing call",
    )
    assert ex.kind == "meeting_invitation"
    assert [m.start for m in ex.meetings] == ["2026-03-04T09:00:00+00:00"]


def test_slot_proposed_in_a_thread_about_a_call():
    # In a thread about a call, "How about Tuesday 9 June at 15:00 CEST?" is the (tentative) call; a date with no
    # time in the same reply is not.
    ex = post(
        "Tuesday works for me. How about Tuesday 9 June at 15:00 CEST?\n\nI am away on 12 June.\n",
        date="Wed, 03 Jun 2026 10:00:00 +0000",
        subject="Re: [wg] planning call next week?",
    )
    assert [m.start for m in ex.meetings] == ["2026-06-09T15:00:00+02:00"] and not ex.deadlines


def test_event_that_runs_from_day_to_day():
    # "the fair runs from 8 to 11 October" is an event; a comment period that runs to a day is still a deadline.
    ex = post(
        "For those coming: the book fair in Leipzig runs from 8 to 11 October.\n\n"
        "The comment period runs until 30 September.\n",
        date="Mon, 07 Sep 2026 10:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-10-08", "2026-10-11")]
    assert [d.due for d in ex.deadlines] == ["2026-09-30"]


def test_weekday_conflict_settled_by_the_date_written_again():
    # "Monday 10 March" (a Tuesday in 2026) under the subject "Call on 10 March": the date is kept, and flagged.
    ex = post(
        "The editors will meet on Monday 10 March 2026 at 09:00 UTC.\n",
        date="Tue, 03 Mar 2026 10:00:00 +0000",
        subject="[wg] Call on 10 March",
    )
    (m,) = ex.meetings
    assert m.start == "2026-03-10T09:00:00+00:00" and m.conflict and "Monday" in m.conflict
    # Without the date written again, the weekday is the nearer reading (as before).
    ex = post("The editors will meet on Monday 10 March 2026 at 09:00 UTC.\n", date="Tue, 03 Mar 2026 10:00:00 +0000")
    assert ex.meetings[0].start == "2026-03-09T09:00:00+00:00" and ex.meetings[0].conflict


def test_spanish_report_with_fuzzy_deliverables():
    # "Resumen de la reunión": a report; "presentará ... a mediados de julio" and "se publicará a principios de
    # noviembre, antes del encuentro" are approximate deadlines, not meetings.
    ex = post(
        "Compartimos el resumen de la sesión del martes 2 de junio.\n\n"
        "El grupo presentará un borrador del informe a mediados de julio. La versión final se publicará a "
        "principios de noviembre, antes del encuentro anual.\n",
        date="Thu, 04 Jun 2026 10:00:00 +0000",
        subject="Resumen de la reunión del 2 de junio",
    )
    assert ex.kind == "meeting_report"
    assert [(d.due, d.approx) for d in ex.deadlines] == [("2026-07-15", True), ("2026-11-05", True)]
    assert not [m for m in ex.meetings if not m.past]


def test_room_block_held_until_a_fuzzy_day():
    # "Rooms in the hotel block are held until mid-May" is an approximate booking deadline, not a meeting.
    ex = post(
        "Rooms in the conference hotel block are held until mid-May.\n", date="Mon, 06 Apr 2026 10:00:00 +0000"
    )
    assert [(d.due, d.approx) for d in ex.deadlines] == [("2026-05-15", True)] and not ex.meetings


def test_postponed_words_belong_to_their_own_date():
    # "postponed" speaks of the date it follows or stands right before; a meeting "postponed to" a day is a meeting
    # there, a deadline "postponed to" a day is a deadline; a long period that "runs from" is no event.
    ex = post(
        "The forum, postponed from its usual spring slot because of the elections, will take place on 5 May.\n\n"
        "The board call on 8 May has been postponed to 12 May at 10:00 UTC.\n\n"
        "The deadline for papers has been postponed to 30 May.\n\n"
        "The pilot runs from 1 June to 31 August.\n",
        date="Mon, 06 Apr 2026 10:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2026-05-05", "2026-05-12T10:00:00+00:00"]
    assert [(d.due, d.extended) for d in ex.deadlines] == [("2026-05-30", True)]


def test_the_day_something_moved_from_is_no_item():
    # "postponed from 20 May" and "extended from 5 May" name old days; the new ones are the items.
    ex = post(
        "The plenary was postponed from 20 May; it will be held on 27 May.\n\n"
        "The deadline for posters, extended from 5 May, is now 12 May.\n",
        date="Mon, 06 Apr 2026 10:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2026-05-27"] and [d.due for d in ex.deadlines] == ["2026-05-12"]


def test_wrapped_line_that_starts_with_a_time_range_and_semicolon_whats():
    # "...will be held on 3 June from" / "9am to 1pm EAT at the centre": one sentence, not an agenda slot; a
    # semicolon ends what a date is about.
    ex = post(
        "The regional forum will be held on 3 June from\n9am to 1pm EAT at the innovation centre in Kigali.\n\n"
        "Participants must register by 25 May; seats are limited.\n",
        date="Mon, 04 May 2026 10:00:00 +0000",
    )
    assert [(m.start, m.what) for m in ex.meetings] == [
        ("2026-06-03T09:00:00+03:00", "The regional forum will be held at the innovation centre in Kigali")
    ]
    assert [(d.due, d.what) for d in ex.deadlines] == [("2026-05-25", "Participants must register")]


def test_newsletter_that_no_rule_knows_is_news():
    # No rule hits; events on days and a due date ahead make news, not an invitation; "Upcoming:" heads no field.
    ex = post(
        "Upcoming: our general assembly will take place on 22 April in Geneva. Board nominations close on 31 March.\n",
        date="Thu, 05 Mar 2026 09:00:00 +0000",
        subject="[wg] Spring bulletin",
    )
    assert ex.kind == "announcement"
    assert [(m.start, m.what) for m in ex.meetings] == [("2026-04-22", "Upcoming: our general assembly will take place in Geneva")]


def test_span_of_hours_with_a_zone_is_a_meeting():
    # No meeting word, but "from 9:00 to 10:30 a.m. EDT" after a date is a meeting; a single time is not enough.
    ex = post(
        "The quarterly review is on Thursday, March 12 from 9:00 to 10:30 a.m. EDT.\n",
        date="Thu, 05 Mar 2026 09:00:00 +0000",
        subject="[wg] Quarterly figures",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-03-12T09:00:00-04:00", "2026-03-12T10:30:00-04:00")]
    ex = post("The portal shows the figures on March 13 at 9:00 EDT.\n", date="Thu, 05 Mar 2026 09:00:00 +0000",
              subject="[wg] Quarterly figures")
    assert not ex.meetings


def test_megabyte_paragraph_without_full_stops_is_fast():
    # A 1 MB wrapped paragraph with dates and no full stop: each date reads only the text near it.
    t0 = time.perf_counter()
    ex = post("the forum is held on 3 June from\n9am to 1pm EAT in the hall and\n" * 18000, date="Mon, 04 May 2026 10:00:00 +0000")
    assert time.perf_counter() - t0 < 1.5 and len(ex.meetings) == 1


def test_results_announced_on_a_day_are_due_that_day():
    # "Results will be announced on 24 April" is a publication date: something is due that day.
    ex = post("Nominations are open until 10 April. Results will be announced on 24 April.\n",
              date="Thu, 19 Mar 2026 09:00:00 +0000")
    assert [d.due for d in ex.deadlines] == ["2026-04-10", "2026-04-24"]


def test_french_call_in_other_words():
    # "nous lançons un appel à contributions ... doivent être envoyés avant le 15 avril": a call with its due date.
    ex = post(
        "Pour le bulletin d'automne, nous lançons un appel à contributions. Les textes doivent être envoyés avant "
        "le 15 avril au secrétariat.\n",
        date="Mon, 09 Mar 2026 09:00:00 +0000",
        subject="Bulletin d'automne",
    )
    assert ex.kind == "call_for_contributions" and [d.due for d in ex.deadlines] == ["2026-04-15"]


def test_table_header_and_key_over_a_list():
    # A table's header says what its rows' dates are; "Key dates:" over several dates is no field name.
    ex = post(
        "| Step | Due |\n|---|---|\n| Abstracts | 6 April |\n| Posters | 7 April |\n\n"
        "Key dates: sign-up by 8 April, papers by 9 April.\n",
        date="Mon, 09 Mar 2026 09:00:00 +0000",
        subject="[wg] dates",
    )
    assert [(d.due, d.what) for d in ex.deadlines] == [
        ("2026-04-06", "Abstracts"), ("2026-04-07", "Posters"), ("2026-04-08", "Key dates: sign-up"),
        ("2026-04-09", "papers"),
    ]


def test_line_after_a_comma_that_starts_with_hours_goes_on():
    # "...on Thursday 25 June 2026," / "13:00-14:30 UTC. A link will follow.": the hours belong to that sentence.
    ex = post(
        "The next meeting will take place on Thursday 25 June 2026,\n13:00-14:30 UTC. A link will follow.\n",
        date="Thu, 28 May 2026 09:00:00 +0000",
    )
    assert [(m.start, m.what) for m in ex.meetings] == [("2026-06-25T13:00:00+00:00", "The next meeting")]


def test_wrapped_line_after_a_key_value_line_goes_on():
    # "For those coming: ... Our team" / "session is on Tuesday 10 November, ...": one sentence across the break.
    ex = post(
        "For those coming: the fair runs from 8 to 12 November. Our team\nsession is on Tuesday 10 November, "
        "09:00-10:00 UTC, in hall B.\n",
        date="Mon, 02 Nov 2026 09:00:00 +0000",
    )
    assert [m.what for m in ex.meetings] == ["For those coming: the fair runs", "Our team session is in hall B"]


def test_date_first_fields_and_bracketed_dates():
    # "6 April: registration; 7 April: slides": the words after each date say what it is; "(by 7 April)" leaves
    # no empty brackets behind.
    ex = post(
        "Timeline: 6 April: registration; 7 April: slides.\n\nPlease book a room (deadline 8 April) and send "
        "posters (by 9 April) to the chairs.\n",
        date="Mon, 09 Mar 2026 09:00:00 +0000",
    )
    assert [(d.due, d.what) for d in ex.deadlines] == [
        ("2026-04-06", "registration"), ("2026-04-07", "slides"), ("2026-04-08", "Please book a room"),
        ("2026-04-09", "send posters to the chairs"),
    ]


def test_no_rule_post_is_relabelled_not_reread():
    # A post no rule knows but with a timed meeting ahead is labelled an invitation; its items stay the careful
    # reading (the portal opening at a time is no meeting).
    ex = post(
        "The portal opens on 5 May at 9:00 UTC. The review meeting is on 6 May, 14:00-15:00 UTC.\n",
        date="Mon, 04 May 2026 09:00:00 +0000",
        subject="[wg] portal",
    )
    assert ex.kind == "meeting_invitation" and [m.start for m in ex.meetings] == ["2026-05-06T14:00:00+00:00"]


def test_subject_and_body_disagree_on_the_day():
    # "Call on 12 March" over "the call will be on Friday 13 March": two dates for one call, flagged.
    ex = post("Dear all, the editors call will be on Friday 13 March at 14:00 UTC.\n",
              date="Mon, 09 Mar 2026 09:00:00 +0000", subject="Agenda: editors call on 12 March")
    (m,) = ex.meetings
    assert m.start == "2026-03-13T14:00:00+00:00" and m.conflict and "subject" in m.conflict


def test_named_slots_with_hanging_lines_under_day_headings():
    # "Track 1: 10:00-11:30 UTC - ..." under "Day 1 - Monday 8 June": one meeting per named slot, a line indented
    # under a slot goes on with it, and a weekday that gives a slot's local day elsewhere is no day of a later event.
    ex = post(
        "We run the review in two rounds:\n\n"
        "Day 1 - Monday 8 June\n"
        "  Track 1: 10:00-11:30 UTC (12:00 CEST) - threat sharing between\n"
        "           Registries and hosting firms\n"
        "  Track 2: 22:30-23:45 UTC (Tuesday 08:30 in Sydney) - outreach to\n"
        "           Pacific operators\n\n"
        "The plenary of the alliance is in Oslo, 7-10 September.\n",
        date="Mon, 01 Jun 2026 10:00:00 +0000",
        subject="Review rounds: timetable",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [
        ("2026-06-08T10:00:00+00:00", "2026-06-08T11:30:00+00:00"),
        ("2026-06-08T22:30:00+00:00", "2026-06-08T23:45:00+00:00"),
        ("2026-09-07", "2026-09-10"),
    ]
    assert ex.meetings[0].what == "Track 1: threat sharing between Registries and hosting firms"
    assert ex.kind == "meeting_invitation"


def test_zone_name_with_its_offset_written_next_to_it():
    # "10:30 (CST, UTC-6)" in August: the written offset is the time meant, no season conflict; the slot's end and
    # the other cities' times do not change it.
    ex = post(
        "The regional roundtable meets online on Tuesday 11 August at 10:30 Monterrey time (CST, UTC-6) / 12:30 in "
        "Santiago.\n",
        date="Mon, 03 Aug 2026 10:00:00 +0000",
    )
    assert [(m.start, m.conflict) for m in ex.meetings] == [("2026-08-11T10:30:00-06:00", None)]


def test_unknown_wording_is_classified_by_what_was_read():
    # No rule knows these wordings: the items decide. A due date for feedback with a call at a time, under a subject
    # that asks for it, is a call for contributions; the same dates under a subject about the session are an
    # invitation; a due date for registering to an event is news.
    body = (
        "The charter text is in the group folder. Kindly let us have your feedback on it no later than Thursday "
        "9 April. We go through the open points on the call on 14 April at 16:00 UTC.\n"
    )
    ex = post(body, date="Mon, 06 Apr 2026 09:00:00 +0000", subject="Charter text: your feedback by Thursday")
    assert ex.rules == () and ex.kind == "call_for_contributions"
    ex = post(body, date="Mon, 06 Apr 2026 09:00:00 +0000", subject="Charter text: open points for the 14 April session")
    assert ex.rules == () and ex.kind == "meeting_invitation"
    ex = post(
        "The regional forum takes place in Accra on 20 May. Places are limited: register no later than 30 April.\n",
        date="Mon, 06 Apr 2026 09:00:00 +0000", subject="Regional forum in Accra",
    )
    assert ex.rules == () and ex.kind == "announcement"


def test_reply_that_corrects_a_meeting_time():
    # A reply whose new text corrects the time of a call is no chatter: the call at its corrected time, an invitation.
    ex = post(
        "Small correction: our editors' call on Thursday 14 May begins at 15:30 UTC, not 14:30 UTC as I wrote earlier.\n",
        date="Mon, 11 May 2026 09:00:00 +0000",
        subject="Re: [wg] Editors' call on Thursday 14 May",
    )
    assert "reply" not in ex.rules and ex.kind == "meeting_invitation"
    assert [m.start for m in ex.meetings] == ["2026-05-14T15:30:00+00:00"]


def test_plural_registrations_that_close_on_a_weekday_and_date():
    # "Registrations close Thursday, June 4th": 'close' right before the date makes it due, as 'closes' does.
    ex = post(
        "The mentoring camp takes place in Kigali from 15 to 19 June. Registrations close Thursday, June 4th.\n",
        date="Mon, 18 May 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-06-04"]
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-06-15", "2026-06-19")]


def test_todays_call_that_people_joined_is_history_and_views_are_asked_for():
    # "Thank you for joining today's call": the call took place, only the next one is ahead.
    ex = post(
        "Thank you for joining today's call, and for the lively debate on the scope.\n\n"
        "Our next call is on Wednesday 20 May at 13:00 UTC.\n",
        date="Wed, 06 May 2026 17:00:00 +0000",
        subject="[wg] After today's call",
    )
    assert [m.start for m in ex.meetings] == ["2026-05-20T13:00:00+00:00"]
    # "Please share your views ... before 15 May", "grateful if you could fill in the questionnaire by ...": due
    # dates for input, and the posts are calls for contributions although no rule knows their wording.
    ex = post(
        "The revised scope note is on the wiki. Please share your views with the editors before 15 May.\n",
        date="Wed, 06 May 2026 17:00:00 +0000",
        subject="[wg] Revised scope note",
    )
    assert [d.due for d in ex.deadlines] == ["2026-05-15"] and ex.kind == "call_for_contributions"
    ex = post(
        "We would be grateful if you could fill in the questionnaire on peering policies by Monday 18 May.\n",
        date="Wed, 06 May 2026 17:00:00 +0000",
        subject="[wg] Peering policies",
    )
    assert [d.due for d in ex.deadlines] == ["2026-05-18"] and ex.kind == "call_for_contributions"


def test_outlook_when_line_in_summer():
    # Outlook's "When:" line labels the zone with its winter offset; in June the Paris time is UTC+2.
    ex = post(
        "When: Thursday, June 11, 2026 4:30 PM-5:15 PM (UTC+01:00) Brussels, Copenhagen, Madrid, Paris.\n"
        "Where: the group's usual bridge\n",
        date="Mon, 01 Jun 2026 09:00:00 +0000",
        subject="Editors' sync",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-06-11T16:30:00+02:00", "2026-06-11T17:15:00+02:00")]


def test_spanish_comments_asked_before_a_date():
    # "Por favor envíen sus comentarios ... antes del 11 de mayo": 'antes del' with a request for comments is due.
    ex = post(
        "Hola a todos:\n\nPor favor envíen sus comentarios sobre el texto de principios antes del 11 de mayo.\n",
        date="Tue, 05 May 2026 18:00:00 +0000",
        subject="[grupo] Texto de principios",
    )
    assert [d.due for d in ex.deadlines] == ["2026-05-11"]


def test_field_whose_key_says_deadline_beside_a_meeting_word():
    # "Deadline for session proposals: Friday 8 May" is due that day although "session" is nearer the date.
    ex = post(
        "Meeting: Tuesday 12 May 2026\nTime: 14:00 UTC\n\nDeadline for session proposals: Friday 8 May.\n",
        date="Tue, 05 May 2026 18:00:00 +0000",
        subject="[wg] Plenary",
    )
    assert [d.due for d in ex.deadlines] == ["2026-05-08"]
    assert [m.start for m in ex.meetings] == ["2026-05-12T14:00:00+00:00"]


def test_a_list_of_days_shares_its_cue_and_its_time():
    # "on 3 June, 10 June and 17 June, each from 13:00 to 14:00 UTC": three timed sessions; a list of due days is
    # three deadlines.
    ex = post(
        "Drafting sessions will take place on 3 June, 10 June and 17 June, each from 13:00 to 14:00 UTC.\n\n"
        "Chapters are due on 1 July, 15 July or 29 July, depending on the track.\n",
        date="Tue, 26 May 2026 09:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [
        (f"2026-06-{d}T13:00:00+00:00", f"2026-06-{d}T14:00:00+00:00") for d in ("03", "10", "17")
    ]
    assert [d.due for d in ex.deadlines] == ["2026-07-01", "2026-07-15", "2026-07-29"]


def test_unknown_wording_notes_and_helpers_wanted():
    # Notes with "Attendees:" and "Regrets:" under a plain subject are a report, although the next call is ahead;
    # "We need two note-takers ... add your name by ..." asks for helpers: a call.
    ex = post(
        "Attendees: Lea, Marco, Ngozi\nRegrets: Olu\n\n1. Glossary: Marco to merge the two lists.\n\n"
        "Next call: 2 June, 15:00 UTC.\n",
        date="Wed, 20 May 2026 18:00:00 +0000",
        subject="[wg] 19 May",
    )
    assert ex.rules == () and ex.kind == "meeting_report"
    assert [m.start for m in ex.meetings] == ["2026-06-02T15:00:00+00:00"]
    ex = post(
        "We need two note-takers for the June plenary; add your name to the sheet by Friday 29 May.\n",
        date="Wed, 20 May 2026 18:00:00 +0000",
        subject="[wg] June plenary",
    )
    assert ex.rules == () and ex.kind == "call_for_contributions"


def test_a_window_that_ran_is_history():
    # "the poll ran from 2 March to 24 April": past tense, so this spring's days (past), not next year's.
    ex = post(
        "For the record, the member poll ran from 2 March to 24 April and got 85 answers.\n",
        date="Tue, 12 May 2026 18:00:00 +0000",
        subject="[wg] Poll results",
    )
    assert all(d.past for d in ex.deadlines) and all(m.past for m in ex.meetings)


def test_duration_gives_the_end():
    # "(45 minutes)" or "it will last an hour and a half" after a start time gives the end; agenda items in brackets
    # under a stated duration do not.
    ex = post(
        "The briefing is on Thursday 4 June at 11:00 UTC (45 minutes).\n",
        date="Mon, 01 Jun 2026 09:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-06-04T11:00:00+00:00", "2026-06-04T11:45:00+00:00")]
    ex = post(
        "The clinic will be held on Friday 5 June at 16:00 CEST. It will last an hour and a half: intro (15 min), "
        "hands-on (60 min).\n",
        date="Mon, 01 Jun 2026 09:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-06-05T16:00:00+02:00", "2026-06-05T17:30:00+02:00")]


def test_time_field_under_a_date_field_is_no_named_slot():
    # "Date: ... / Time: 09:30-11:00 / Zone: UTC" is one record: the time field is the meeting's, not an agenda slot.
    ex = post(
        "Plenary\nDate: 3 June 2026\nTime: 09:30-11:00\nTimezone: UTC\nRoom: online\n",
        date="Mon, 25 May 2026 09:00:00 +0000",
        subject="[wg] Agenda for the plenary",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-06-03T09:30:00+00:00", "2026-06-03T11:00:00+00:00")]


def test_four_digit_time_range_with_zone_after_it():
    # "from 0930 to 1100 GMT": both ends are clock times, though only the second carries the zone.
    ex = post(
        "The editors will hold a virtual interim on 2031-02-11 from 0930 to 1100 GMT, on the usual bridge.\n",
        date="Mon, 3 Feb 2031 10:00:00 +0000", subject="[wg] interim meeting",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2031-02-11T09:30:00+00:00", "2031-02-11T11:00:00+00:00")]


def test_launch_held_at_a_zoned_time_is_an_event():
    # A launch the group will hold at a clock time with a zone is a meeting; a launch with no time stays a due date.
    ex = post(
        "The toolkit is finished. We will hold a brief virtual launch on Tuesday 14 January at 15:30 CET "
        "for anyone who wants a tour.\n\nThe portal launch is planned for 3 March.\n",
        date="Mon, 6 Jan 2031 09:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2031-01-14T15:30:00+01:00"]
    assert [d.due for d in ex.deadlines] == ["2031-03-03"]


def test_forwarded_deadline_that_the_sender_extends_is_dropped():
    # The sender moves the due date; the forwarded original still shows the old one, which no longer holds.
    body = (
        "Hello everyone,\n\nGood news: the closing date for survey answers has been extended to Monday 20 October.\n\n"
        "---------- Forwarded message ---------\nFrom: Survey team <survey@example.org>\n\n"
        "Please answer the member survey. Survey closes: Friday, 10 October 2031.\n"
        "Registration for the plenary is open until 25 November 2031.\n"
    )
    ex = post(body, date="Wed, 1 Oct 2031 09:00:00 +0000", subject="Fwd: member survey (extended)")
    assert [(d.due, d.extended) for d in ex.deadlines] == [("2031-10-20", True), ("2031-11-25", False)]
    # Without the extension, the forwarded due date is the only one and stays.
    ex = post(body.split("Good news")[0] + body[body.index("----------"):], date="Wed, 1 Oct 2031 09:00:00 +0000")
    assert [d.due for d in ex.deadlines] == ["2031-10-10", "2031-11-25"]


def test_table_under_a_line_that_introduces_it_with_a_colon():
    # Tab-separated options right under "... for a one-hour call:" are meeting slots, though no row says 'call'.
    body = (
        "Thanks Ana. I can see we disagree on the scope. Two possible times for a one-hour call:\n\n"
        "\tA\tWed 9 Apr\t10:00 UTC\n\tB\tThu 10 Apr\t4 pm CEST (14:00 UTC)\n\nLet me know which suits you.\n"
    )
    ex = post(body, date="Tue, 1 Apr 2031 09:00:00 +0000", subject="Re: [wg] scope question")
    assert [m.start for m in ex.meetings] == ["2031-04-09T10:00:00+00:00", "2031-04-10T16:00:00+02:00"]
    # The same rows after an unrelated sentence are not taken.
    ex = post(body.replace("Two possible times for a one-hour call:", "Here are the figures."),
              date="Tue, 1 Apr 2031 09:00:00 +0000", subject="Re: [wg] scope question")
    assert ex.meetings == ()


def test_proposed_slots_in_a_thread_about_a_sync():
    # A reply proposing "Tuesday the 11th" and another day, both at zoned times, under a subject asking for a quick sync.
    ex = post(
        "Agreed, easier to talk. Would Tuesday the 11th at 0900 UTC suit? Otherwise Friday (14 March) 16h UTC.\n",
        date="Mon, 10 Mar 2031 08:00:00 +0000", subject="Re: [wg] budget lines - quick sync?",
    )
    assert [m.start for m in ex.meetings] == ["2031-03-11T09:00:00+00:00", "2031-03-14T16:00:00+00:00"]


def test_portuguese_notes_with_next_meeting_and_due_date():
    # Portuguese: a report (its own meeting is past), a due date with 'até', a fuzzy one, the next meeting in Brasília time.
    ex = post(
        "Olá a todos,\n\nNa reunião de segunda-feira, 7 de abril, revisamos o plano de trabalho.\n\n"
        "Pedimos que enviem comentários sobre o texto até quinta-feira, 24 de abril.\n"
        "As inscrições para a oficina encerram em meados de maio.\n\n"
        "Próxima reunião: terça-feira, 6 de maio, às 15h (horário de Brasília).\n",
        date="Wed, 9 Apr 2031 12:00:00 -0300", subject="Relato da reunião do grupo - 7/04",
    )
    assert ex.kind == "meeting_report"
    assert [(d.due, d.approx) for d in ex.deadlines] == [("2031-04-24", False), ("2031-05-15", True)]
    assert [m.start for m in ex.meetings] == ["2031-05-06T15:00:00-03:00"]


def test_days_of_an_event_people_attend():
    # "planning to attend the forum (8-11 September 2031)": the days of an event to attend are a meeting, and a
    # weekday-only session inside them is pinned to that week; a registration day stays a deadline.
    ex = post(
        "Some notes for everyone who will attend the regional forum in Tallinn (8–11 September 2031):\n\n"
        "Please register by Friday, 22 August.\n\n"
        "Our own panel is on Tuesday, 14:00–15:30 EEST, in hall B.\n",
        date="Mon, 4 Aug 2031 09:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [
        ("2031-09-08", "2031-09-11"), ("2031-09-09T14:00:00+03:00", "2031-09-09T15:30:00+03:00")
    ]
    assert [d.due for d in ex.deadlines] == ["2031-08-22"]


def test_event_a_report_will_be_presented_at():
    # "presented at the summit (3-6 November 2031)": the days of that event are a meeting, not a period of work.
    ex = post(
        "Your input shapes the study, which will be presented at the regional summit (3-6 November 2031).\n",
        date="Mon, 4 Aug 2031 09:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2031-11-03", "2031-11-06")]
    assert ex.deadlines == ()


def test_day_the_clocks_change_is_no_meeting():
    # A date that only says when clocks change is a note about time zones, not a meeting or a due date; the
    # call after it, whose own date follows a clock change in the same sentence, is still a meeting.
    ex = post(
        "Reminder: our editors' call is on Tuesday 7 April 2026 at 14:00 UTC.\n\n"
        "Heads-up: in Europe the clocks go forward on 29 March, so the call will be an hour later for you.\n\n"
        "In North America daylight saving time begins on March 8; after the clocks change on 8 March the "
        "review session on 10 March at 16:00 UTC is one hour earlier for some of you.\n",
        date="Mon, 02 Mar 2026 09:00:00 +0000",
    )
    assert sorted(m.start for m in ex.meetings) == ["2026-03-10T16:00:00+00:00", "2026-04-07T14:00:00+00:00"]
    assert not ex.deadlines
    assert "clocks change" in " ".join(ex.explain)


def test_possessive_today_and_as_discussed_are_not_ahead():
    # "today's feedback" is what was said today, not a due date; "as discussed at today's call" is a call that took
    # place; "today's deadline" and a call later today at a zoned time are still ahead.
    ex = post(
        "As discussed at today's call, the chairs will merge today’s feedback into the draft.\n\n"
        "Reminder: today's deadline for travel support requests.\n\n"
        "The follow-up call is on 20 May at 15:00 UTC.\n",
        date="Tue, 12 May 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-05-12"]
    assert [m.start for m in ex.meetings] == ["2026-05-20T15:00:00+00:00"]


def test_old_deadline_field_and_postponed_planned_day():
    # "Previous deadline: ..." as a field is the replaced day; "we must postpone the workshop that was scheduled for
    # Tuesday, 9 June" names the old day, only the new one is a meeting.
    ex = post(
        "The reviewers asked for more time, so the dates change.\n\n"
        "  Old deadline:  Monday 1 June 2026\n"
        "  New deadline:  Monday 15 June 2026\n\n"
        "For the same reason we must postpone the drafting workshop that was scheduled for Tuesday, 9 June.\n"
        "It will now take place on Tuesday 23 June 2026, 10:00-12:00 UTC.\n",
        date="Wed, 27 May 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-06-15"]
    assert [m.start for m in ex.meetings] == ["2026-06-23T10:00:00+00:00"]


def test_publication_of_a_meeting_document_is_a_due_date():
    # "publish the final agenda on 3 June": the meeting word names what is published, the day is a due date.
    # "Slides will be posted after the webinar on 24 June" still dates the webinar.
    ex = post(
        "Our spring workshop takes place on Wednesday 17 June 2026, 14:00-17:00 CEST.\n\n"
        "We will publish the final agenda on Wednesday 3 June. The background paper will be posted on our shared "
        "drive for members on Monday 8 June. Read it before the call.\n\n"
        "Slides will be posted after the webinar on 24 June.\n",
        date="Tue, 19 May 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-06-03", "2026-06-08"]
    assert sorted(m.start[:10] for m in ex.meetings) == ["2026-06-17", "2026-06-24"]


def test_span_of_zoned_hours_and_date_field_make_the_meeting():
    # "an open call to go through the proposals received, on 9 June, 13:00-14:30 UTC": the deadline word is only the
    # topic; a span of hours with a zone is when people meet. A deadline with one hour stays a deadline.
    ex = post(
        "Proposals are due by Friday 5 June 2026, 17:00 UTC.\n\n"
        "We will then hold an open call to go through the proposals received on Tuesday 9 June, 13:00-14:30 UTC.\n",
        date="Mon, 18 May 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-06-05"]
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-06-09T13:00:00+00:00", "2026-06-09T14:30:00+00:00")]
    # In an invitation, the 'Date :' field is the meeting even when another field joined to it names a due word.
    ex = post(
        "Nous vous invitons à notre atelier en ligne sur l'accessibilité.\n\n"
        "Date : mardi 16 juin 2026\n"
        "Horaire : de 14h à 16h (heure de Paris)\n"
        "Lieu : en ligne (le lien sera envoyé aux inscrits la veille)\n",
        date="Mon, 01 Jun 2026 09:00:00 +0000", subject="Invitation : atelier accessibilité",
    )
    assert not ex.deadlines
    assert [m.start for m in ex.meetings] == ["2026-06-16T14:00:00+02:00"]


def test_portuguese_two_days_joined_by_e():
    # "nos dias 9 e 10 de setembro": one event over two days (like "9 and 10 September"), not the second day alone.
    ex = post(
        "Convidamos todos para o encontro anual da rede, que será realizado em Recife nos dias 9 e 10 de setembro "
        "de 2026.\n",
        date="Mon, 03 Aug 2026 09:00:00 -0300",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-09-09", "2026-09-10")]


def test_html_table_rows_keep_their_head_and_zone():
    # An HTML table puts a blank line between its rows: each row is still under the head row, whose "Time (UTC)"
    # column gives the zone and whose "Session" column says what the rows are.
    markup = (
        "<p>Our working group meets twice before the summit.</p>"
        "<table><tr><th>Session</th><th>Day</th><th>Time (UTC)</th><th>Topic</th></tr>"
        "<tr><td>First</td><td>Monday 12 October 2026</td><td>09:30&ndash;11:00</td><td>Scope</td></tr>"
        "<tr><td>Second</td><td>Monday 19 October 2026</td><td>09:30&ndash;11:00</td><td>Draft text</td></tr></table>"
    )
    raw = (
        "From: Chair <chair@example.org>\nTo: wg@lists.example.org\nSubject: [wg] two sessions\n"
        "Date: Mon, 28 Sep 2026 09:00:00 +0000\nMessage-ID: <h@example.org>\n"
        f"Content-Type: text/html; charset=utf-8\n\n{markup}"
    ).encode()
    ex = extract.analyze(read_message(raw, received=RECEIVED, max_body_bytes=5_000_000), RULES)
    assert [(m.start, m.end) for m in ex.meetings] == [
        ("2026-10-12T09:30:00+00:00", "2026-10-12T11:00:00+00:00"),
        ("2026-10-19T09:30:00+00:00", "2026-10-19T11:00:00+00:00"),
    ]


def test_all_times_said_with_a_place_and_zone():
    # "All times below are Nairobi local time (EAT, UTC+3)" gives the zone to the times written without one.
    ex = post(
        "All times below are Nairobi local time (EAT, UTC+3).\n\n"
        "The opening session is on Tuesday 6 October 2026 at 10:00.\n",
        date="Mon, 07 Sep 2026 09:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2026-10-06T10:00:00+03:00"]


def test_days_the_subject_cancels():
    # The subject cancels the retreat of 14-15 May; the body names those days again without a cancel word, and the
    # replacement call on 14 May at a zoned time is the only meeting.
    ex = post(
        "Dear all,\n\nWe will meet online instead: a video call on Thursday 14 May 2026, 10:00-12:00 UTC.\n\n"
        "The venue wrote to us this morning. Their building closes for repairs, which affects the retreat we had "
        "booked for 14-15 May.\n",
        date="Mon, 04 May 2026 09:00:00 +0000", subject="Fwd: Editors' retreat 14-15 May cancelled - going online",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-05-14T10:00:00+00:00", "2026-05-14T12:00:00+00:00")]


def test_for_after_a_meeting_word_other_than_call():
    # "call for papers" is no call, but "a workshop for new reviewers" is a workshop.
    ex = post(
        "The call for papers is open until Friday 4 September 2026.\n\n"
        "We also run a short workshop for new reviewers on Tuesday 8 September at 15:00 UTC.\n",
        date="Mon, 03 Aug 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-09-04"]
    assert [m.start for m in ex.meetings] == ["2026-09-08T15:00:00+00:00"]


def test_reply_and_form_words_make_a_due_date_with_until_or_before():
    # "until"/"before" need a deadline word in the sentence: "let us know", "tell me", "fill in the form" are such
    # words; "the office is closed until ..." with none of them is still no due date.
    ex = post(
        "Please let us know until 9 October whether you will come to the dinner.\n\n"
        "To help at the registration desk, fill in the helpers' form before the end of October.\n\n"
        "I am travelling until 20 October.\n",
        date="Thu, 01 Oct 2026 09:00:00 +0000",
    )
    assert [(d.due, d.approx) for d in ex.deadlines] == [("2026-10-09", False), ("2026-10-31", True)]


def test_ascii_table_with_hash_column_and_rule_line():
    # " # | Task | Who | Due" over a "---+---" rule: the head is a table row (not a Markdown heading) and the rule
    # under it does not cut the rows from it, so each row's date is a due date.
    ex = post(
        "Open actions after the meeting:\n\n"
        " #  | Task                          | Who      | Due\n"
        "----+-------------------------------+----------+------------\n"
        " 1  | Revise the glossary section   | Editors  | 12 Nov 2026\n"
        " 2  | Collect the member statements | Chairs   | 20 Nov 2026\n",
        date="Mon, 02 Nov 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-11-12", "2026-11-20"]


def test_field_naming_what_is_sent_in_is_a_due_date():
    # "Short papers (four pages): ..." then "Conference (hybrid): ...": the first field's key names what is sent
    # in, so its date is due, even though the next field's event word stands nearer to it.
    ex = post(
        "Important dates for the 2026 edition:\n\n"
        "  Short papers (four pages):  Monday 7 September 2026\n"
        "  Conference (hybrid):  21-23 October 2026\n",
        date="Mon, 03 Aug 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-09-07"]
    assert [(m.start, m.end) for m in ex.meetings] == [("2026-10-21", "2026-10-23")]


def test_zoned_span_in_a_call_for_contributions_is_a_meeting():
    # In a call for contributions a date with no cue is read as the due date, but not when a span of hours with a
    # zone follows it: that is a session ("Date: ...; Time: 14:00-15:30 UTC").
    ex = post(
        "This is a call for contributions: we invite proposals for lightning talks. Please submit your proposal by "
        "Friday 6 November 2026; comments and suggestions are welcome too.\n\n"
        "Selected speakers present at our online slot:\n\n"
        "  Date: Thursday, November 19, 2026\n"
        "  Time: 14:00-15:30 UTC\n",
        date="Mon, 19 Oct 2026 09:00:00 +0000", subject="[wg] Call for proposals: lightning talks",
    )
    assert ex.kind == "call_for_contributions"
    assert [d.due for d in ex.deadlines] == ["2026-11-06"]
    assert [m.start for m in ex.meetings] == ["2026-11-19T14:00:00+00:00"]


def test_bare_local_time_after_local_time_with_offset():
    # Once "local time (UTC+3)" is said, a later bare "local time" in the same post is that offset too.
    ex = post(
        "Programme of the capacity-building days in Nairobi:\n\n"
        "- Tuesday 13 October 2026, 09:00-12:00 local time (UTC+3): opening session\n"
        "- Wednesday 14 October 2026, 14:00-17:00 local time: hands-on session on routing security\n",
        date="Mon, 14 Sep 2026 09:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2026-10-13T09:00:00+03:00", "2026-10-14T14:00:00+03:00"]


def test_same_time_takes_the_hours_of_the_meeting_before():
    # "Wednesday 18 November 2026, same time" after a timed meeting: the same hours on the new day.
    ex = post(
        "Our next call is on Wednesday 4 November 2026, 16:00-17:00 UTC. The call after that is on Wednesday "
        "18 November 2026, same time.\n",
        date="Mon, 26 Oct 2026 09:00:00 +0000",
    )
    assert [(m.start, m.end) for m in ex.meetings] == [
        ("2026-11-04T16:00:00+00:00", "2026-11-04T17:00:00+00:00"),
        ("2026-11-18T16:00:00+00:00", "2026-11-18T17:00:00+00:00"),
    ]


def test_kind_when_no_rule_hits_cancelled_subject_and_meeting_topic():
    # No rule knows these wordings. A subject that cancels a call makes news, even with the next call named; a
    # subject naming sessions "on the naming proposal" names a topic and asks for nothing: the timed sessions make
    # an invitation, not a call for contributions.
    ex = post(
        "Hi everyone,\n\nSeveral of us are travelling, so this week's coordination call will not take place. We resume "
        "on Tuesday 17 November 2026 at 15:00 UTC with the usual link.\n\nThanks,\nSam\n",
        date="Mon, 09 Nov 2026 09:00:00 +0000", subject="This week's call CANCELLED",
    )
    assert ex.kind == "announcement" and [m.start for m in ex.meetings] == ["2026-11-17T15:00:00+00:00"]
    ex = post(
        "Hello all,\n\nWe will hold two more working sessions on the proposal: Thursday 12 November 2026 and Thursday "
        "19 November 2026, both 16:00-17:30 UTC.\nIf you want a topic covered, open an issue in the tracker by Monday "
        "9 November 2026.\n",
        date="Tue, 03 Nov 2026 09:00:00 +0000", subject="Two working sessions on the naming proposal (12 and 19 Nov)",
    )
    assert ex.kind == "meeting_invitation" and len(ex.meetings) == 2 and len(ex.deadlines) == 1


def test_subject_and_body_give_two_due_dates():
    # The subject says feedback is due 12 June, the body says Monday 15 June: one due date written two ways, flagged.
    # A subject whose date is the body's own due date, or that says the date moved, flags nothing.
    ex = post(
        "Dear all,\n\nThe second draft of the charter is attached. Please send feedback to the editors by Monday "
        "15 June 2026.\n",
        date="Mon, 01 Jun 2026 09:00:00 +0000", subject="Charter draft 2 - feedback due 12 June",
    )
    (d,) = ex.deadlines
    assert d.due == "2026-06-15" and d.conflict and "2026-06-12" in d.conflict
    ex = post(
        "Dear all,\n\nPlease send feedback to the editors by Monday 15 June 2026.\n",
        date="Mon, 01 Jun 2026 09:00:00 +0000", subject="Charter draft 2 - feedback deadline extended to 15 June",
    )
    assert [(d.due, d.conflict) for d in ex.deadlines] == [("2026-06-15", None)]


def test_wrapped_line_starting_with_annex_is_no_heading():
    # "... see" / "Annex II. The drafting group ...": a sentence wrapped before "Annex II", not a new section, so the
    # due date said in prose and again in the action table below is one deadline.
    ex = post(
        "Summary of the drafting group call.\n\n"
        "Members should send their remarks on the glossary by Friday 13 November 2026; the comments so far are in\n"
        "Annex II. The drafting group will meet again soon.\n\n"
        " #  | Action                      | Owner    | Due\n"
        "----+-----------------------------+----------+------------\n"
        " 1  | Remarks on the glossary     | Members  | 13 Nov 2026\n",
        date="Mon, 02 Nov 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-11-13"]


def test_german_post_meeting_with_mez_and_signup_deadline():
    # German words (rules/lang/de.toml): a meeting on a numeric date with "bis ... Uhr (MEZ)" and a sign-up deadline.
    ex = post(
        "Liebe Mitglieder,\n\nunsere nächste Sitzung der Arbeitsgruppe findet statt am\n\n"
        "  Donnerstag, 04.12.2025, 14:00 bis 15:00 Uhr (MEZ)\n\n"
        "Bitte meldet euch bis Montag, 01.12.2025 an.\n",
        date="Mon, 17 Nov 2025 10:00:00 +0100",
        subject="[AG] Einladung zur Sitzung",
    )
    assert [d.due for d in ex.deadlines] == ["2025-12-01"]
    assert [(m.start, m.end) for m in ex.meetings] == [("2025-12-04T14:00:00+01:00", "2025-12-04T15:00:00+01:00")]
    assert ex.kind == "meeting_invitation"


def test_original_date_that_no_longer_holds_is_not_a_deadline():
    # "the original deadline of <day>" names the date an extension replaced: only the new date is due.
    ex = post(
        "Good news: reviewers get more time. The original deadline of 12 May is gone; reviews are now due on 26 May 2025.\n",
        date="Mon, 05 May 2025 09:00:00 +0000",
        subject="Review period extended",
    )
    assert [d.due for d in ex.deadlines] == ["2025-05-26"]


def test_field_line_wrapped_after_by_goes_on_with_its_date():
    # "ACTION: ... by" then an indented "<date>." on the next line: one field, and the date is its due date.
    ex = post(
        "Notes of today's call.\n\n"
        "   ACTION: Chairs to circulate the revised charter text by\n"
        "   12 March 2027.\n"
        "   ACTION: Editors to merge the open pull requests by the 19th of\n"
        "   March.\n",
        date="Thu, 04 Mar 2027 18:00:00 +0000",
        subject="[wg] notes",
    )
    assert [d.due for d in ex.deadlines] == ["2027-03-12", "2027-03-19"]


def test_request_for_agenda_items_before_a_day_is_a_deadline_not_a_meeting():
    # "before <day>" with a request for something sent in: the day is when it is due, not another meeting.
    ex = post(
        "The next sync call is on 22 October at 15:00 UTC.\n"
        "Kindly put your agenda items in the shared notes before the 20th of October so the chairs can plan.\n",
        date="Tue, 14 Oct 2025 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2025-10-20"]
    assert [m.start for m in ex.meetings] == ["2025-10-22T15:00:00+00:00"]


def test_phase_that_runs_until_a_day_is_due_then_not_a_meeting():
    # In notes of a call, "the review phase runs until <day>" ends a phase: a due date, not another meeting.
    ex = post(
        "Summary of this week's editors call:\n\n"
        "- The public review phase runs until March 12th. Post your concerns on the tracker.\n",
        date="Fri, 27 Feb 2026 17:00:00 +0000",
        subject="[eds] call summary",
    )
    assert [d.due for d in ex.deadlines] == ["2026-03-12"]
    assert [m.start for m in ex.meetings if not m.past] == []


def test_consensus_call_with_a_day_is_a_due_date_not_a_meeting():
    # A "consensus call" (or "adoption call", "last call") on the list is a question with a closing day, not a call
    # people dial into.
    ex = post(
        "The chairs will run a consensus call on the list about the new milestone, to wrap up on 20.05.2026.\n",
        date="Wed, 06 May 2026 10:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-05-20"]
    assert ex.meetings == ()


def test_interim_is_a_meeting_word():
    # "Interim: <day>, <hours> UTC" (a working group's meeting between plenaries) is a meeting, whatever item it closes.
    ex = post(
        "Upcoming:\n - Online interim: Tuesday 8 September 2026, 14:00-15:00 UTC, to settle the open review comments.\n",
        date="Mon, 24 Aug 2026 10:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2026-09-08T14:00:00+00:00"]
    assert ex.deadlines == ()


@pytest.mark.parametrize(
    ("body", "date", "due"),
    [
        ("Merci de vous inscrire avant le vendredi 9 octobre pour recevoir le lien.\n", "Mon, 28 Sep 2026 09:00:00 +0200", "2026-10-09"),
        ("Inscreva-se até 14 de outubro pelo formulário.\n", "Mon, 28 Sep 2026 09:00:00 -0300", "2026-10-14"),
        ("Inscríbase hasta el 16 de octubre en el formulario.\n", "Mon, 28 Sep 2026 09:00:00 -0500", "2026-10-16"),
    ],
)
def test_sign_up_verbs_in_the_imperative_make_weak_words_due_dates(body, date, due):
    # "sign up before/until <day>" written with the verb's imperative or infinitive form (French, Portuguese, Spanish)
    ex = post(body, date=date)
    assert [d.due for d in ex.deadlines] == [due]


def test_poll_that_starts_now_ending_on_a_day_is_due_that_day():
    # "This message starts a ... poll, ending on <day>": the opening word does not hide the closing day after it.
    ex = post(
        "Hello all, this message starts a ten-day call for adoption of the routing draft, ending on 2026-03-20.\n"
        "Reply on the list with your view.\n",
        date="Tue, 10 Mar 2026 12:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-03-20"]


def test_freeze_dates_of_a_release_schedule_are_deadlines():
    # A freeze is a cut-off: "Code freeze: <day>" in a release plan is a due date for everything meant to get in.
    ex = post(
        "Plan for the next minor version:\n\n"
        "- Code freeze: Monday, 8 June 2026. Only fixes after that.\n"
        "- Docs freeze: 15.06.2026.\n",
        date="Mon, 25 May 2026 08:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-06-08", "2026-06-15"]


def test_weekday_alone_after_a_deadline_word_is_the_next_such_day():
    # "by EOD Tuesday": a weekday right after a strong deadline word pins the next such day; a weekday after
    # "before" or without a deadline word stays unread.
    ex = post(
        "Please get the slides to me by EOD Tuesday. We meet on Thursdays as usual, and I will merge them before Wednesday.\n",
        date="Fri, 06 Nov 2026 09:00:00 +0000",
    )
    assert [d.due for d in ex.deadlines] == ["2026-11-10"]


def test_day_named_in_a_comparison_is_not_another_meeting():
    # "...earlier than tomorrow" compares with a day already named: it adds no meeting, while "no later than" is a
    # deadline word.
    ex = post(
        "Our sync call is tomorrow at 10:00 CET. The follow-up call will be at 08:00 UTC (an hour earlier in UTC\n"
        "than tomorrow). Please send notes no later than 20 March 2026.\n",
        date="Mon, 09 Mar 2026 08:00:00 +0000",
    )
    assert [m.start for m in ex.meetings] == ["2026-03-10T10:00:00+01:00"]
    assert [d.due for d in ex.deadlines] == ["2026-03-20"]


def test_slots_under_an_introducing_line_belong_to_the_dated_meeting_above():
    # "Schedule (times in UTC+1):" between the dated meeting and its timed lines does not end the agenda.
    ex = post(
        "The spring plenary takes place in Lyon on Thursday 5 March 2026.\n\n"
        "Schedule (times in UTC+1):\n"
        "  10:00-11:00 (UTC+1)  Opening and reports\n"
        "  13:30-15:00 (UTC+1)  Roadmap discussion\n",
        date="Mon, 09 Feb 2026 09:00:00 +0000",
    )
    timed = [(m.start, m.what) for m in ex.meetings if len(m.start) > 10]
    assert timed == [
        ("2026-03-05T10:00:00+01:00", "Opening and reports"),
        ("2026-03-05T13:30:00+01:00", "Roadmap discussion"),
    ]


@pytest.mark.parametrize(
    "subject",
    ["[wg] Call for adoption: the metrics draft", "Comments needed: updated onboarding guide (by 12 June)"],
)
def test_subject_asking_for_adoption_or_comments_makes_a_call(subject):
    # A subject that asks the list for its view ("call for adoption", "comments needed") is a call for contributions.
    ex = post("Please tell the list by 12 June 2026 whether you support this.\n", date="Mon, 01 Jun 2026 09:00:00 +0000",
              subject=subject)
    assert ex.kind == "call_for_contributions"


def test_weekday_alone_in_past_tense_is_not_pinned():
    # "by Friday" in a sentence about what was done names a day gone by: no due date is read from the weekday alone.
    ex = post(
        "Thanks all. The editors circulated the revised text by Friday, as agreed on the call.\n",
        date="Tue, 10 Nov 2026 09:00:00 +0000",
    )
    assert ex.deadlines == ()
    ex = post("Please send the revised text by Friday.\n", date="Tue, 10 Nov 2026 09:00:00 +0000")
    assert [d.due for d in ex.deadlines] == ["2026-11-13"]
