"""Benchmark: one reminders tick with 10,000 items and 5,000 members (target: < 200 ms per tick).

Builds a store (items over a year around `now`, members in eight zones with `remind me` rows, some for
every item), runs a first tick (which queues what is due), then times steady ticks a minute apart,
the pure `due()` computation alone, and a tick that has a fresh batch to queue.

    python bench/reminders.py [--items 10000] [--members 5000] [--ticks 30]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import reminders as rem
from bot.config import from_dict
from bot.jobs import reminder_tick
from bot.store import Store

NOW = datetime(2026, 6, 3, 6, 0, tzinfo=UTC)  # a Wednesday: no digest slot near
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Africa/Nairobi", "UTC", "Asia/Tokyo",
         "America/Los_Angeles", "Australia/Sydney")
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def build(path: Path, n_items: int, n_members: int, rng: random.Random) -> None:
    tz = ZoneInfo("Europe/Berlin")
    store = Store.open(path)
    created = NOW - timedelta(days=200)
    with store.transaction():
        for i in range(n_items):
            offset = timedelta(minutes=rng.randint(-180 * 24 * 60, 180 * 24 * 60))
            start = NOW + offset
            what = f"{rng.choice(WORDS)} {rng.choice(WORDS)} task{i} item{i}"
            if rng.random() < 0.5:
                store.save_item(type="deadline", what=what, start=start.astimezone(tz).date().isoformat(), end=None,
                                tz=tz, now=created, message_id=f"<b{i}@x>", text="t")
            else:
                local = start.astimezone(tz).replace(second=0, microsecond=0)
                store.save_item(type="meeting", what=what, start=local.isoformat(), end=None, tz=tz, now=created,
                                message_id=f"<b{i}@x>", text="t", conflict="unsure" if rng.random() < 0.05 else None)
        for m in range(n_members):
            address = f"member{m}@example.org"
            store.set_member(address, now=created, timezone=rng.choice(ZONES), digest=rng.random() < 0.5)
            if m % 100 == 0:  # 1 in 100 wants a reminder before every item
                store.add_reminder(address, now=created, offsets=["1d"])
            for _ in range(2):
                store.add_reminder(address, now=created, item_id=rng.randint(1, n_items),
                                   offsets=rng.choice([None, ["1d"], ["2d", "1h"]]))
    store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--ticks", type=int, default=60)
    args = parser.parse_args(argv)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        t = time.perf_counter()
        build(path, args.items, args.members, rng)
        print(f"store: {args.items} items, {args.members} members built in {time.perf_counter() - t:.1f} s")
        config = from_dict({"list": {"timezone": "Europe/Berlin"}, "store": {"path": str(path)},
                            "digest": {"to_list": False}})
        store = Store.open(path)
        t = time.perf_counter()
        first = reminder_tick(store, config=config, now=NOW)
        print(f"first tick (queues everything due since start): {first} mails in {(time.perf_counter() - t) * 1000:.0f} ms")

        steady, busy_ticks = [], []
        for k in range(1, args.ticks + 1):
            t = time.perf_counter()
            n = reminder_tick(store, config=config, now=NOW + timedelta(minutes=k))
            (busy_ticks.append((n, (time.perf_counter() - t) * 1000)) if n else
             steady.append((time.perf_counter() - t) * 1000))

        # The pure computation as the tick does it: candidates as far ahead as the longest offset,
        # and (worst case) without the previous tick's time, so every slot that ever came is built.
        now = NOW + timedelta(minutes=args.ticks)
        every = {*config.reminders.deadline_offsets, *config.reminders.meeting_offsets, *store.reminder_offsets()}
        items = store.reminder_candidates(now, min(rem.reach(every), rem.HORIZON))
        ids = [i.id for i in items]
        subs = store.item_subscriptions(ids)
        members = store.members_info(s["address"] for s in subs)
        dates = store.dates_set(ids)
        pure = []
        for _ in range(args.ticks):
            t = time.perf_counter()
            found = rem.due(items, subs, members, dates, config=config, now=now)
            pure.append((time.perf_counter() - t) * 1000)

        # A tick six hours on: a fresh batch of reminders to render and queue.
        t = time.perf_counter()
        batch = reminder_tick(store, config=config, now=NOW + timedelta(hours=6))
        busy = (time.perf_counter() - t) * 1000
        store.close()
    print(f"candidates per tick: {len(items)} items, {len(subs)} reminder rows, {len(found)} slots come")
    steady.sort()
    p95 = steady[min(len(steady) - 1, int(len(steady) * 0.95))]
    print(f"ticks with nothing to send: median {statistics.median(steady):.1f} ms, p95 {p95:.1f} ms, "
          f"max {steady[-1]:.1f} ms over {len(steady)} ticks  (target < 200 ms)")
    if busy_ticks:
        mails = sum(n for n, _ in busy_ticks)
        spent = sum(ms for _, ms in busy_ticks)
        print(f"ticks that queued mail:     {len(busy_ticks)} ticks, {mails} mails, max {max(ms for _, ms in busy_ticks):.1f} ms"
              f" ({spent / mails:.1f} ms per mail rendered and queued)")
    print(f"pure due(), every slot that came (no since): median {statistics.median(pure):.1f} ms")
    print(f"tick queueing {batch} new mails: {busy:.0f} ms")
    return 0 if statistics.median(steady) < 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
