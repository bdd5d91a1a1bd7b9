"""Recognition rules (bot/rules.py): the shipped rules load, bad rule files fail naming file and key, data decides."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.message import read_message
from bot.paths import data_dir
from bot.rules import KINDS, RuleError, classify, load_rules

RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)


def msg(subject: str, body: str):
    raw = (
        f"From: a@example.org\nSubject: {subject}\nDate: Mon, 04 May 2026 09:00:00 +0000\n"
        f"Content-Type: text/plain; charset=utf-8\n\n{body}"
    ).encode()
    return read_message(raw, received=RECEIVED)


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(data_dir("rules"), folder)
    return folder


def test_shipped_rules_load_in_priority_order():
    # Every shipped rule loads, has a known kind, and the order is the priority order (data, not code).
    rs = load_rules()
    assert rs.rules and all(r.kind in KINDS for r in rs.rules)
    assert [r.priority for r in rs.rules] == sorted(r.priority for r in rs.rules)
    assert {"en", "es", "fr"} <= set(rs.languages)


@pytest.mark.parametrize(
    ("subject", "body", "kind"),
    [
        ("[wg] Minutes of the 3 May call", "It was agreed to publish the draft. Attendees: Ana, Ben.", "meeting_report"),
        ("[wg] Agenda for the 12 May call", "Join the meeting on Zoom. Agenda: 1. Charter", "meeting_invitation"),
        ("Call for papers: workshop on privacy", "Submissions should be 8 pages.", "call_for_contributions"),
        ("Registration now open", "Registration is open for the summit.", "announcement"),
        ("[forum] Autumn programme", "The call for tutorial proposals is open. Outlines should be sent to the chairs "
         "by 2 June.", "call_for_contributions"),
        ("[gt] Bulletin de juin", "Voici l'appel à contributions pour le bulletin. Merci d'envoyer vos textes avant le "
         "12 juin.", "call_for_contributions"),
        ("Open for Public Comment: draft data policy", "Comments can be filed until 30 June.", "call_for_contributions"),
        ("[wg] Draft guidelines", "The editors are seeking written comments on the draft. Comments should be sent to "
         "the chairs by 1 July.", "call_for_contributions"),
        ("Call for Talks: spring meetup of the routing community", "Send an outline of your talk.", "call_for_contributions"),
        # a reply whose own text asks the list for comments is a call, not chatter
        ("Re: [wg] revised charter - input requested", "Here is the new text. Members are encouraged to share their written comments "
         "with the chairs by 9 June.", "call_for_contributions"),
        ("Re: [wg] revised charter - input requested", "Thanks, I have no comments on the new text.", "other"),
        # notes that list the action items, said in the subject
        ("[tf] Notes & action items: editors sync, 4 June", "Ben will update the glossary. Next sync on 18 June.",
         "meeting_report"),
        ("[tf] Action items from yesterday's drafting call", "Ana to send the new outline to the list.", "meeting_report"),
        ("[wg] Highlights from yesterday's editors call", "Thanks all. Attendees: Ana, Bo. It was agreed to merge.",
         "meeting_report"),
        # a subject about a meeting that also names what is asked for; "are also welcome"
        ("Steering group: nominations and first online meeting", "Members are invited to nominate candidates by "
         "20 May. Self-nominations are also welcome. The first online meeting is planned for 27 May at 14:00 UTC.",
         "call_for_contributions"),
        # "Convocatoria" convenes a meeting here, it calls for nothing
        ("Convocatoria: reunión extraordinaria del comité - 12 de mayo", "Les convocamos a la reunión del martes 12 "
         "de mayo a las 17:00 UTC. Orden del día: 1. Presupuesto. Les pedimos enviar sus propuestas de puntos y sus "
         "contribuciones antes del 8 de mayo; deben ser enviadas a la secretaría.", "meeting_invitation"),
        ("Re: thoughts", "I agree with Ana, thanks.", "other"),
        ("hello", "Nice to meet you all.", "other"),
    ],
)
def test_classify(subject, body, kind):
    # The first rule that hits decides the kind; nothing hitting is 'other'.
    assert classify(msg(subject, body), load_rules())[0] == kind


def test_several_body_tables_score_apart(rules_copy: Path):
    # [[body]] tables: a weak phrase counted once in its own table does not make the rule hit on its own.
    (rules_copy / "poll.toml").write_text(
        'description = "A poll"\nkind = "announcement"\npriority = 1\nthreshold = 2\n'
        '[[body]]\nweight = 1\nphrases = ["vote now"]\n[[body]]\nweight = 1\nmax_hits = 1\nphrases = ["please", "today"]\n'
    )
    rs = load_rules(rules_copy)
    assert classify(msg("x", "Please reply today."), rs)[1][:1] != ("poll",)
    assert classify(msg("x", "Vote now, please."), rs)[1][:1] == ("poll",)


def test_every_hit_is_recorded():
    # All rules that hit are named, the deciding one first.
    kind, hits = classify(msg("[wg] Call for contributions", "Registration is open. Please note the deadline."), load_rules())
    assert kind == "call_for_contributions" and hits[0] == "call_for_contributions" and "announcement" in hits


def test_adding_a_phrase_changes_the_classification(rules_copy: Path):
    # A new phrase is a data change: a rule file written into a folder changes the kind.
    m = msg("Quarterly bulletin", "Here is the quarterly bulletin of the group.")
    assert classify(m, load_rules(rules_copy))[0] == "other"
    (rules_copy / "bulletin.toml").write_text(
        'description = "A bulletin is news"\nkind = "announcement"\npriority = 45\nthreshold = 2\n'
        '[subject]\nweight = 2\nphrases = ["quarterly bulletin"]\n'
    )
    kind, hits = classify(m, load_rules(rules_copy))
    assert kind == "announcement" and hits == ("bulletin",)


def test_adding_a_month_name_is_data(rules_copy: Path):
    # A language is data: a German file makes "5. Mai" a date.
    from bot.dates import find_dates

    assert find_dates("am 5. Mai", load_rules(rules_copy).grammar) == []
    (rules_copy / "lang" / "de.toml").write_text('language = "German"\n[months]\nmai = 5\n[words]\nordinal_suffixes = ["."]\n')
    (found,) = find_dates("am 5. Mai", load_rules(rules_copy).grammar)
    assert (found.month, found.day) == (5, 5)


GOOD = 'description = "d"\nkind = "other"\npriority = 1\n[subject]\nphrases = ["x"]\n'


@pytest.mark.parametrize(
    ("name", "text", "key"),
    [
        ("broken.toml", "description = \n", "bad TOML"),
        ("nodesc.toml", 'kind = "other"\npriority = 1\n[subject]\nphrases = ["x"]\n', "description: missing"),
        ("nokind.toml", 'description = "d"\npriority = 1\n[subject]\nphrases = ["x"]\n', "kind: missing"),
        ("badkind.toml", GOOD.replace('"other"', '"spam"'), "kind: unknown kind 'spam'"),
        ("prio.toml", GOOD.replace("priority = 1", 'priority = "high"'), "priority: must be an integer"),
        ("phr.toml", GOOD.replace('["x"]', '"x"'), "subject.phrases: must be a list of strings"),
        ("rx.toml", GOOD.replace('phrases = ["x"]', "patterns = ['(unclosed']"), "subject.patterns: bad regex"),
        ("extra.toml", GOOD + "colour = 1\n", "colour: unknown key"),
        ("sub.toml", GOOD.replace("phrases", "phrasez"), "subject.phrasez: unknown key"),
        ("weight.toml", GOOD + 'weight = "heavy"\n', "subject.weight: must be a number"),
        ("nowhere.toml", 'description = "d"\nkind = "other"\npriority = 1\n', "subject: a rule must look somewhere"),
        ("veto.toml", GOOD + "[veto]\nfooter = ['x']\n", "veto.footer: unknown place"),
        ("thr.toml", GOOD.replace("priority = 1", "priority = 1\nthreshold = true"), "threshold: must be a number"),
        ("arr.toml", GOOD.replace("[subject]", "body = [1]\n[subject]"), "body[0]: must be a table"),
        ("arr2.toml", GOOD + "[[body]]\nweight = 1\n", "body[0]: needs phrases or patterns"),
    ],
)
def test_bad_rule_files_name_file_and_key(rules_copy: Path, name: str, text: str, key: str):
    # Each bad file fails at load with an error naming the file and the key.
    (rules_copy / name).write_text(text)
    with pytest.raises(RuleError) as err:
        load_rules(rules_copy)
    assert f"rules/{name}" in str(err.value) and key in str(err.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[months]\nfoo = 13\n', "months.foo: must be an integer from 1 to 12"),
        ('[words]\ndeadline_cues = "due"\n', "words.deadline_cues: must be a list of strings"),
        ('[words]\nbogus = []\n', "words.bogus: unknown key"),
        ('colour = 1\n', "colour: unknown key"),
    ],
)
def test_bad_language_files_name_file_and_key(rules_copy: Path, text: str, key: str):
    # A language file is checked the same way.
    (rules_copy / "lang" / "xx.toml").write_text(text)
    with pytest.raises(RuleError) as err:
        load_rules(rules_copy)
    assert "rules/lang/xx.toml" in str(err.value) and key in str(err.value)


def test_missing_folder():
    # A folder that is not there is a RuleError, not a crash.
    with pytest.raises(RuleError):
        load_rules(Path("/nonexistent/rules"))


@pytest.mark.parametrize(
    ("pattern", "hints"),
    [
        (r"calls? for (?:papers|talks)", ("call",)),
        (r"\b(deadline|submissions?)\b.*extended", ("deadline", "submission")),
        (r"(?:looking for|seeking) volunteers", ("looking for", "seeking")),
        (r"seeking|looking for", ()),  # an alternation at the top level may start anywhere
        (r"(?:[\d-]+ )?volunteers", ()),
        (r"(?:ab|cd) x", ()),  # words too short to be worth a look
        (r"(a|b)c|d", ()),
        (r"(?:seeking|looking for)? volunteers", ()),  # the group may be absent: a match can start elsewhere
        (r"\b(call|meeting)s?\b", ("call", "meeting")),
    ],
)
def test_pattern_hints_never_skip_a_match(pattern, hints):
    # A lowered rule pattern is skipped when none of its leading words is in the text: the words must be right.
    import re

    from bot.rules import _hints

    assert _hints(re.compile(pattern)) == hints


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("we are seeking volunteers", True),
        ("unseeking volunteers", False),  # the look-behind at the start still sees the text before the word
        ("seeking seeking volunteers", True),  # not the first place the word is
        ("seeking reviewers", False),
    ],
)
def test_hinted_patterns_match_as_a_search_would(text, found):
    import re

    from bot.rules import _hints, _match_at

    pattern = re.compile(r"(?<!\w)(?:seeking|looking for) volunteers")
    words = _hints(re.compile(r"(?:seeking|looking for) volunteers"))
    assert _match_at(pattern, text, words) is found is (pattern.search(text) is not None)


def test_phrases_with_marks_and_vetoes_still_count(rules_copy: Path):
    # A phrase is looked for only when each of its words is a word of the text: an apostrophe, a non-ASCII quote or
    # a line break around it must not hide it; a veto tried only where its first words are still vetoes.
    (rules_copy / "poll.toml").write_text(
        'description = "A poll"\nkind = "announcement"\npriority = 1\nthreshold = 2\n'
        '[body]\nweight = 1\nphrases = ["merci d\'envoyer", "vote now"]\n'
        "[veto]\nbody = ['(?i)\\b(cancelled|withdrawn) (poll|vote)\\b']\n"
    )
    rs = load_rules(rules_copy)
    assert classify(msg("x", "«Merci d'envoyer» vos choix.\nVote\nnow!"), rs)[1][:1] == ("poll",)
    assert classify(msg("x", "Merci d'envoyer vos choix. Vote now. (Cancelled vote, sorry.)"), rs)[1][:1] != ("poll",)
    assert classify(msg("x", "Merci d'envoyer. Vote nowhere."), rs)[1][:1] != ("poll",)
