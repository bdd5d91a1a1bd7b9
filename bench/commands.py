"""Benchmark: the command round trip (raw mail in -> reply queued in the outbox) for `upcoming` with
10,000 items in the store, beside `help` in the same run.

Prints p50/p99 in milliseconds for both and the ratio of the p50s and of the p99s. Target (issue 4):
`upcoming` within 1.5x of `help` (the two alternate, so a busy machine slows both alike; p99 is still
sensitive to other processes - read it with `uptime`). The round trip is read_message + handler.handle (guards, roster,
rate log, commands, rendering, outbox write) + reading the queued reply back, on a SQLite file.

    python bench/commands.py [--items 10000] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import email
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import from_dict
from bot.handler import handle
from bot.message import read_message
from bot.store import Store

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
MEMBER = "anna@example.org"


def fill(store: Store, n: int, tz_name: str) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(tz_name)
    rng = random.Random(4)
    with store.transaction():
        for i in range(n):
            start = NOW + timedelta(days=rng.uniform(-365, 3 * 365))
            if i % 3:
                store.save_item(type="deadline", what=f"Deliverable {i} of work stream {i % 17}",
                                start=start.date().isoformat(), end=None, tz=tz, now=NOW,
                                message_id=f"<post{i}@example.org>", text=f"Deliverable {i} is due.")
            else:
                s = start.replace(minute=0, second=0, microsecond=0)
                store.save_item(type="meeting", what=f"Call {i} of work stream {i % 17}",
                                start=s.isoformat(), end=(s + timedelta(hours=1)).isoformat(), tz=tz, now=NOW,
                                message_id=f"<post{i}@example.org>", text=f"Call {i}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        roster = Path(tmp) / "roster.txt"
        roster.write_text(MEMBER + "\n")
        config = from_dict({
            "list": {"timezone": "Europe/Berlin"},
            "members": {"roster": str(roster), "rate_per_hour": 10**9, "global_rate_per_hour": 10**9},
        })
        store = Store.open(Path(tmp) / "bench.sqlite3")
        fill(store, args.items, config.list.timezone)
        shown = len(store.upcoming(NOW, 30, limit=10**6))
        times: dict[str, list[float]] = {"help": [], "upcoming": []}
        n = 0
        for round_ in range(args.rounds + 20):
            for command in ("help", "upcoming"):
                n += 1
                raw = (f"From: {MEMBER}\r\nTo: {config.bot.address}\r\nSubject: {command}\r\n"
                       f"Message-ID: <b{n}@example.org>\r\nDate: Tue, 01 Sep 2026 10:00:00 +0000\r\n\r\n"
                       "Thanks\r\n").encode()
                started = time.perf_counter()
                msg = read_message(raw, received=NOW)
                handle(store, msg, config=config, now=NOW + timedelta(seconds=n))
                row = store.db.execute("SELECT raw FROM outbox WHERE idem_key = ?", (f"reply:<b{n}@example.org>",)).fetchone()
                reply = email.message_from_bytes(bytes(row[0]))
                elapsed = time.perf_counter() - started
                assert reply["In-Reply-To"] == f"<b{n}@example.org>"
                if round_ >= 20:  # warm-up rounds are not counted
                    times[command].append(elapsed * 1000)
        store.close()
    stats = {}
    for command, values in times.items():
        values.sort()
        p50 = statistics.median(values)
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        stats[command] = (p50, p99)
        print(f"{command:9s} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({len(values)} round trips)")
    r50 = stats["upcoming"][0] / stats["help"][0]
    r99 = stats["upcoming"][1] / stats["help"][1]
    print(f"items in store: {args.items}; in the 30-day window: {shown} (the reply lists 50 and counts the rest)")
    print(f"upcoming/help: p50 {r50:.2f}x, p99 {r99:.2f}x (target <= 1.5x)")
    return 0 if r50 <= 1.5 and r99 <= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
