"""The command language: finding commands in a mail, dates as typed, the registry and its examples."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_handler import MOD, NOW, Bot, make_config, seed, text_of, trusted

from bot.commands import REGISTRY
from bot.commands.base import CommandError
from bot.commands.parse import find_commands, strip_prefixes
from bot.commands.when import offsets, take_date, take_datetime, take_moment, take_time
from bot.store import Store

BERLIN = ZoneInfo("Europe/Berlin")


def names(subject: str, text: str, **kw: object) -> list[str]:
    found = find_commands(subject, text, max_lines=20, **kw)  # type: ignore[arg-type]
    return [line for line, _ in found.commands]


@pytest.mark.parametrize(
    "subject, bare",
    [
        ("Re: help", "help"),
        ("RE: Fwd: AW: upcoming 7", "upcoming 7"),
        ("Re[2]: SV: next", "next"),
        ("[wg] Re: show 3", "show 3"),
        ("WG: TR: Antw: help", "help"),
        ("help", "help"),
    ],
)
def test_subject_prefixes(subject: str, bare: str):
    # Reply and forward prefixes in many languages, and list tags, are dropped.
    assert strip_prefixes(subject) == bare


def test_commands_one_a_line_case_insensitive_until_end():
    # Several commands, any case, bullets tolerated; 'end' stops and the rest is Ignored.
    found = find_commands("", "HELP\n\n  * Upcoming 7\nnext\nend\nshow 1\n", max_lines=20)
    assert [w[0] for _, w in found.commands] == ["HELP", "Upcoming", "next"]
    assert found.ignored == ("show 1",)


def test_stop_at_first_non_command_after_a_command():
    # After a command, the first line that is not one ends the reading (signatures, prose).
    found = find_commands("", "upcoming\nCheers,\nAnna\nhelp\n", max_lines=20)
    assert names("", "upcoming\nCheers,\nAnna\nhelp\n") == ["upcoming"]
    assert found.ignored == ("Cheers,", "Anna", "help")


def test_unknown_command_gets_a_suggestion():
    # A typo before the first command is Unprocessed with a guess; prose gets no guess.
    found = find_commands("", "upcomming 7\nHello there\nhelp\n", max_lines=20)
    assert found.unprocessed == (("upcomming 7", "upcoming"), ("Hello there", None))
    assert [line for line, _ in found.commands] == ["help"]


def test_subject_and_body():
    # A command Subject runs first; a "Re:" Subject runs only when the body has no command.
    assert names("upcoming 7", "help") == ["upcoming 7", "help"]
    assert names("Re: upcoming 7", "help") == ["help"]
    assert names("Re: upcoming 7", "") == ["upcoming 7"]
    assert names("Re: upcoming 7", "", read_subject=False) == []
    found = find_commands("Question about dates", "", max_lines=20)
    assert found.commands == () and found.unprocessed == (("Question about dates", None),)


def test_at_most_max_lines():
    # More command lines than the cap: the first N run and the rest is reported as Ignored.
    found = find_commands("", "help\n" * 10_000, max_lines=20)
    assert len(found.commands) == 20
    assert len(found.ignored) + found.ignored_more == 10_000 - 20


def test_leading_noise_is_bounded():
    # A mail of prose with a command-like word deep inside runs nothing.
    found = find_commands("", "\n".join(f"line {i}" for i in range(50)) + "\nhelp\n", max_lines=20)
    assert found.commands == () and len(found.unprocessed) == 5


@pytest.mark.parametrize(
    "words, expected",
    [
        ("2026-09-14", date(2026, 9, 14)),
        ("14 Sept 2026", date(2026, 9, 14)),
        ("14 September", date(2026, 9, 14)),
        ("Sep 14, 2026", date(2026, 9, 14)),
        ("3 Jan", date(2027, 1, 3)),
        ("14.9.2026", date(2026, 9, 14)),
        ("tomorrow", date(2026, 9, 2)),
        ("friday", date(2026, 9, 4)),
    ],
)
def test_dates_as_typed(words: str, expected: date):
    # Dates members type are read (a date without a year is the next one).
    found = take_date(words.split(), date(2026, 9, 1))
    assert found is not None and found[0] == expected and found[1] == len(words.split())


@pytest.mark.parametrize(
    "words, expected",
    [("9:00", time(9)), ("at 21:30", time(21, 30)), ("9am", time(9)), ("9:30 pm", time(21, 30)), ("15h", time(15))],
)
def test_times_as_typed(words: str, expected: time):
    # Times of day in the usual spellings.
    found = take_time(words.split())
    assert found is not None and found[0] == expected and found[1] == len(words.split())


def test_reminder_moments():
    # 'in N units', 'on <date> <time>', 'tomorrow at', 'at' (today or tomorrow): in the member's zone.
    now = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
    assert take_moment("in 3 days to x".split(), BERLIN, now) == (now + timedelta(days=3), 3)
    assert take_moment("in 2h x".split(), BERLIN, now) == (now + timedelta(hours=2), 2)
    assert take_moment("on 14 Sept 9:00 to x".split(), BERLIN, now)[0] == datetime(2026, 9, 14, 7, 0, tzinfo=UTC)
    assert take_moment("tomorrow at 8:00 x".split(), BERLIN, now)[0] == datetime(2026, 9, 2, 6, 0, tzinfo=UTC)
    assert take_moment("at 11:00 x".split(), BERLIN, now)[0] == datetime(2026, 9, 2, 9, 0, tzinfo=UTC)
    with pytest.raises(CommandError, match="say when"):
        take_moment("soonish x".split(), BERLIN, now)
    with pytest.raises(CommandError, match="at most a year"):
        take_moment("in 400 days".split(), BERLIN, now)


def test_meeting_times_and_offsets():
    # A meeting time is read in the given zone, or the moderator's; offsets are validated.
    today = date(2026, 9, 1)
    assert take_datetime("2026-09-14 15:00 UTC x".split(), BERLIN, today) == (datetime(2026, 9, 14, 15, tzinfo=UTC), 3)
    dt, used = take_datetime("14 Sept 15:00 x".split(), BERLIN, today)
    assert dt == datetime(2026, 9, 14, 15, tzinfo=BERLIN) and used == 3
    assert take_datetime(["2026-09-14T15:00+02:00"], BERLIN, today)[0] == datetime(2026, 9, 14, 13, tzinfo=UTC)
    with pytest.raises(CommandError):
        take_datetime("2026-09-14 x".split(), BERLIN, today)
    assert offsets("1d,7d") == ["7d", "1d"]
    for bad in ("7x", "0d", "400d", "1d,2d,3d,4d,5d,6d"):
        with pytest.raises(CommandError):
            offsets(bad)


EXAMPLES = [(name, example) for name, cmd in sorted(REGISTRY.items()) for example in cmd.examples]


def test_every_command_has_a_summary_and_examples():
    # The registry is complete enough to generate help from it.
    assert {"help", "upcoming", "deadlines", "next", "summary", "show", "remind", "reminders", "cancel", "digest",
            "timezone", "stop", "ics", "add", "edit", "confirm", "reject", "status"} <= set(REGISTRY)
    for cmd in REGISTRY.values():
        assert cmd.summary and cmd.examples
        assert all(e.split()[0] == cmd.name for e in cmd.examples)


@pytest.fixture
def moderator_bot(tmp_path: Path):
    config = make_config(tmp_path)
    store = Store.open(tmp_path / "ex.sqlite3")
    seed(store, config)
    store.add_reminder(MOD, now=NOW, item_id=2, offsets=["1d"])  # r1, for 'cancel r1'
    yield Bot(store, config)
    store.close()


@pytest.mark.parametrize("name, example", EXAMPLES)
def test_each_example_is_valid(moderator_bot: Bot, name: str, example: str):
    # Every example in help runs without an error for a proven moderator.
    replies = moderator_bot.send(example, sender=MOD, headers=trusted())
    assert len(replies) == 1
    body = text_of(replies[0])
    assert f"> {example}\n" in body
    outcome = moderator_bot.store.get_value(f"handled:<m{moderator_bot.n}@example.org>")
    assert outcome == f"answered [{name}:ok]", body


def test_help_lists_every_command_with_an_example(moderator_bot: Bot):
    # 'help' is generated from the registry: every command, with its first example.
    body = text_of(moderator_bot.send("help")[0])
    for cmd in REGISTRY.values():
        assert f"\n  {cmd.name}" in body and f"Example: {cmd.examples[0]}" in body
    one = text_of(moderator_bot.send("help remind")[0])
    assert all(e in one for e in REGISTRY["remind"].examples)
    assert "did you mean 'remind'" in text_of(moderator_bot.send("help remnd")[0])
