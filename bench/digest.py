"""Benchmark: render and queue 5,000 personal digests, beside a bare Jinja2 render of the same templates.

The store holds a working group's month (deadlines, meetings, reports, calls, unconfirmed items) and
5,000 members who asked for the digest, in four zones. Each zone's members are handled by the daemon's
own path (jobs.queue_personal_digests at that zone's Monday 08:00): snapshot, per member render of the
text and HTML templates, MIME, calendar attachment, outbox row. The baseline renders the same two
templates with the same context in a plain jinja2.Environment, in the same run.
Target (issue 5): at least 0.5x the bare render rate.

    python bench/digest.py [--members 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import digest as digest_mod
from bot.config import from_dict
from bot.jobs import queue_personal_digests
from bot.paths import data_dir
from bot.store import Store

MONDAY = datetime(2026, 6, 1, tzinfo=UTC)
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Africa/Nairobi")
BERLIN = ZoneInfo("Europe/Berlin")
TOPICS = ("charter review", "use case survey", "terminology draft", "security considerations", "interop testing",
          "liaison statement", "implementation report", "registry policy", "test vectors", "privacy review")


def build(store: Store, members: int) -> None:
    before = MONDAY - timedelta(days=10)
    with store.transaction():
        for i in range(24):
            day = (MONDAY + timedelta(days=1 + i)).date().isoformat()
            store.save_item(type="deadline", what=f"Comments on the {TOPICS[i % 10]} (round {i})", start=day, end=None,
                            tz=BERLIN, now=before, message_id=f"<d{i}@wg>", text="t", conflict="two dates" if i % 8 == 0 else None)
        for i in range(12):
            start = (MONDAY + timedelta(days=2 * i + 1, hours=13)).astimezone(BERLIN).replace(minute=0).isoformat()
            store.save_item(type="meeting", what=f"Interim call on the {TOPICS[i % 10]} #{i}", start=start, end=None,
                            tz=BERLIN, now=before, message_id=f"<m{i}@wg>", text="t", where="https://meet.example.org/wg")
        for i in range(3):
            when = MONDAY - timedelta(days=2 + i)
            store.add_message(
                message_id=f"<r{i}@wg>", subject=f"Minutes {i}", sender="chair@example.org", date=when, now=when,
                kind="meeting_report",
                summary={"title": f"Interim call on the {TOPICS[i]}", "date": f"{when:%Y-%m-%d}",
                         "sections": [{"heading": t.title(), "gist": f"Discussed the {t}; agreement on the next draft."}
                                      for t in TOPICS[:4]],
                         "decisions": ["Adopt the revised outline", "Move the deadline by a week"],
                         "next_steps": ["Circulate the draft"]},
                links=[{"url": f"https://example.org/slides-{i}.pdf", "label": "slides"}],
                action_items=[{"who": "Ana", "what": "Revise section 3", "due": "2026-06-09"},
                              {"who": "Bo", "what": "Collect the use cases", "due": ""}],
            )
        store.add_message(message_id="<c@wg>", subject="Call for contributions: use cases", sender="chair@example.org",
                          date=MONDAY - timedelta(days=3), now=MONDAY - timedelta(days=3), kind="call_for_contributions",
                          links=[{"url": "https://example.org/usecases", "label": ""}])
        for m in range(members):
            store.set_member(f"member{m}@example.org", now=before, timezone=ZONES[m % len(ZONES)], digest=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=5000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        config = from_dict({"list": {"timezone": "Europe/Berlin", "name": "WG"},
                            "store": {"path": str(Path(tmp) / "bench.sqlite3")},
                            "members": {"moderators": ["member0@example.org"]}})
        store = Store.open(config.store.path)
        build(store, args.members)

        # Ours: the daemon's path, at each zone's Monday 08:00.
        slots = sorted(datetime.combine(MONDAY.date(), datetime.min.time().replace(hour=8), tzinfo=ZoneInfo(z))
                       for z in ZONES)
        t = time.perf_counter()
        queued = sum(queue_personal_digests(store, config=config, now=s.astimezone(UTC)) for s in slots)
        ours = time.perf_counter() - t
        rows = store.db.execute("SELECT count(*), avg(length(raw)) FROM outbox WHERE kind = 'digest'").fetchone()

        # The same templates with the same context (a member in Berlin), rendered bare.
        snap = digest_mod.snapshot(store, config=config, now=slots[0].astimezone(UTC),
                                   since=slots[0].astimezone(UTC) - timedelta(days=7), tz=BERLIN)
        captured: dict[str, object] = {}
        real_render = digest_mod.render

        def capture(name: str, context: dict[str, object]) -> tuple[str, str]:
            captured.update(context)
            return real_render(name, context)

        digest_mod.render = capture  # type: ignore[assignment]
        try:
            unsub = {"_url": "https://bot.example.org/unsubscribe/TOKEN?what=digest", "_command": "digest off"}
            digest_mod.render_digest(snap, address="member1@example.org", unsubscribe=unsub)
        finally:
            digest_mod.render = real_render  # type: ignore[assignment]
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
                                 undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
                                 lstrip_blocks=True)
        text_t = env.get_template("digest/weekly.txt")
        html_t = env.overlay(autoescape=True).get_template("digest/weekly.html")
        t = time.perf_counter()
        for _ in range(queued):
            text_t.render(captured)
            html_t.render(captured)
        bare = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(queued):
            text_t.render(captured)
        bare_text = time.perf_counter() - t
        store.close()

    rate, bare_rate, text_rate = queued / ours, queued / bare, queued / bare_text
    print(f"personal digests queued: {queued} ({rows[0]} outbox rows, {rows[1] / 1024:.1f} KiB each, "
          f"{len(snap.items)} items, text + HTML + .ics)")
    print(f"render + queue (listbot):         {rate:8.0f} messages/s  ({ours:.2f} s)")
    print(f"bare Jinja2, text + HTML:         {bare_rate:8.0f} renders/s  ({bare:.2f} s)")
    print(f"bare Jinja2, text only:           {text_rate:8.0f} renders/s  ({bare_text:.2f} s)")
    print(f"ratio to the bare render of the same two templates: {rate / bare_rate:.2f}x  (target >= 0.5x)")
    print(f"ratio to a bare render of the text template alone:  {rate / text_rate:.2f}x")
    return 0 if rate / bare_rate >= 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
