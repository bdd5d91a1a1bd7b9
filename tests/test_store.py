"""The store: migrations, aware UTC datetimes, one item per announced thing, extension history, outbox keys."""

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.store import MIGRATIONS, Store, StoreError, similar, span_utc

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path / "s.sqlite3")
    yield s
    s.close()


def test_migrations_run_once_and_record_the_version(tmp_path: Path):
    # A new file gets every migration; reopening runs none again; a newer schema is refused.
    path = tmp_path / "m.sqlite3"
    Store.open(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this listbot knows"):
        Store.open(path)


def test_unopenable_store_is_one_clear_error(tmp_path: Path):
    # A store path that cannot be a database names the path.
    bad = tmp_path / "dir.sqlite3"
    bad.mkdir()
    with pytest.raises(StoreError, match="cannot be opened"):
        Store.open(bad)


def test_naive_datetimes_are_refused(store: Store):
    # Only aware datetimes go into the store.
    with pytest.raises(ValueError, match="naive"):
        store.add_message(message_id="<x>", subject="", sender="", date=datetime(2026, 1, 1), now=NOW)


def test_span_of_days_and_times():
    # A date-only item covers the whole day in the list's zone; a timed one is an instant range in UTC.
    start, end, all_day = span_utc("2026-03-29", None, BERLIN)
    assert all_day and start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC) and end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    start, end, all_day = span_utc("2026-03-02T15:00:00+01:00", "2026-03-02T16:30:00+01:00", BERLIN)
    assert not all_day and start == datetime(2026, 3, 2, 14, 0, tzinfo=UTC) and end - start == timedelta(minutes=90)


def test_same_deadline_in_two_posts_is_one_item_with_two_sources(store: Store):
    # A deadline announced again (same day, similar description) gains a source instead of a twin.
    a = store.save_item(type="deadline", what="comments on the draft outline", start="2026-03-20", end=None,
                        tz=BERLIN, now=NOW, message_id="<a>", text="Comments on the draft outline by 20 March.")
    b = store.save_item(type="deadline", what="draft outline comments", start="2026-03-20", end=None,
                        tz=BERLIN, now=NOW, message_id="<b>", text="Reminder: outline comments due 20 March")
    c = store.save_item(type="deadline", what="registration for the workshop", start="2026-03-20", end=None,
                        tz=BERLIN, now=NOW, message_id="<b>", text="Register by 20 March")
    assert a == (1, "new") and b == (1, "source") and c[1] == "new"
    assert [s.message_id for s in store.sources(1)] == ["<a>", "<b>"]


def test_extension_moves_the_item_and_keeps_history(store: Store):
    # "Deadline extended to ..." updates the existing item, bumps its sequence and records old and new.
    store.save_item(type="deadline", what="workshop proposals", start="2026-04-01", end=None,
                    tz=BERLIN, now=NOW, message_id="<a>", text="Workshop proposals are due 1 April.")
    later = NOW + timedelta(days=20)
    result = store.save_item(type="deadline", what="workshop proposals", start="2026-04-10", end=None, tz=BERLIN,
                             now=later, message_id="<b>", text="The deadline for workshop proposals is extended to 10 April.",
                             extended=True)
    assert result == (1, "extended")
    item = store.item(1)
    assert item is not None and item.start == "2026-04-10" and item.sequence == 1
    changes = [(c.field, c.old, c.new) for c in store.history(1)]
    assert ("start", "2026-04-01", "2026-04-10") in changes
    assert len(store.items()) == 1


def test_upcoming_window_and_order(store: Store):
    # upcoming() lists active items not over yet and starting within the window, soonest first.
    for i, day in enumerate(["2026-03-01", "2026-03-05", "2026-03-03", "2026-05-01"]):
        store.save_item(type="deadline", what=f"thing {i} alpha{i}", start=day, end=None, tz=BERLIN, now=NOW,
                        message_id=f"<{i}>", text="t")
    store.update_item(3, {"status": "cancelled"}, tz=BERLIN, now=NOW, actor="mod@example.org")
    got = [i.start for i in store.upcoming(NOW, 30)]
    assert got == ["2026-03-05"]
    assert [i.start for i in store.upcoming(NOW - timedelta(days=2), 30)] == ["2026-03-01", "2026-03-05"]


def test_outbox_idempotency_key(store: Store):
    # Queueing the same key twice is a no-op.
    args = dict(recipient="a@example.org", sender="bot@example.org", message_id="<m>", raw=b"x",
                send_after=NOW, give_up=NOW + timedelta(days=2), now=NOW)
    assert store.enqueue(idem_key="k", **args) is True
    assert store.enqueue(idem_key="k", **args) is False
    assert store.outbox_counts() == {"queued": 1}


def test_similar_descriptions():
    # Similar enough: shared content words; different things are not merged.
    assert similar("feedback on the workstream 2 draft paper", "workstream 2 draft paper feedback")
    assert not similar("registration for the workshop", "comments on the draft outline")
