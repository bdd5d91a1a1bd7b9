"""Benchmark: `listbot import` of a generated mbox, beside the bare stdlib parse rate in the same run.

Prints messages/s for both, their ratio, and the import's peak RSS. Targets (issue 2): at least
0.25x the bare rate, at least 500 messages/s on one core, peak RSS below 200 MB.

    python bench/ingest.py [--messages 10000]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

MONTHS = "January February March April May June July August September October November December".split()
FILLER = (
    "The group discussed the scope of the background paper and how to collect case studies from members. "
    "Several participants stressed the need for input from regions that are not yet represented. "
    "The coordinators will circulate the revised outline and a list of open questions. "
)
SENTENCES = (
    "Please send your comments on the draft by {day} {month}.",
    "The next virtual meeting will take place on {weekday} {day} {month}, 14:00-15:30 UTC.",
    "Contributions are due {day} {month} {year}.",
    "Registration closes on {day} {month}.",
    "We will meet again in {month}.",
    "Thank you all for joining the call today.",
)


def make_message(i: int, rng: random.Random) -> bytes:
    date = datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(hours=7 * i)
    target = date + timedelta(days=rng.randint(1, 60))
    lines = []
    for _ in range(rng.randint(2, 6)):
        lines.append(
            rng.choice(SENTENCES).format(
                day=target.day, month=MONTHS[target.month - 1], year=target.year, weekday=f"{target:%A}"
            )
        )
    size = rng.randint(2_000, 20_000)
    body = "\n\n".join(lines)
    while len(body) < size:
        body += "\n\n" + FILLER * rng.randint(1, 4)
    body = body[:size]
    head = (
        f"From: Member {i % 97} <member{i % 97}@example.org>\n"
        f"To: wg@lists.example.org\n"
        f"Subject: [WG] Update number {i}\n"
        f"Date: {email.utils.format_datetime(date)}\n"
        f"Message-ID: <bench-{i}@example.org>\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "MIME-Version: 1.0\n\n"
    )
    return (head + body + "\n").encode()


def write_mbox(path: Path, messages: list[bytes]) -> None:
    with path.open("wb") as f:
        for i, raw in enumerate(messages):
            f.write(f"From member{i % 97}@example.org Mon Jan  1 09:00:00 2024\n".encode())
            f.write(b"\n".join(b">" + line if line.startswith(b"From ") else line for line in raw.split(b"\n")))
            f.write(b"\n")


def bare_rate(messages: list[bytes]) -> float:
    started = time.perf_counter()
    for raw in messages:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        if body is not None:
            body.get_content()
    return len(messages) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(42)
    messages = [make_message(i, rng) for i in range(args.messages)]
    total_kb = sum(len(m) for m in messages) / 1024
    with tempfile.TemporaryDirectory() as tmp:
        mbox = Path(tmp) / "archive.mbox"
        write_mbox(mbox, messages)
        config = Path(tmp) / "bench.toml"
        config.write_text(f'[store]\npath = "{Path(tmp) / "bench.sqlite3"}"\n')
        bare = bare_rate(messages)
        command = [sys.executable, "-m", "bot", "import", "--config", str(config), str(mbox)]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if result.returncode != 0:
            print(result.stdout, result.stderr, file=sys.stderr)
            return 1
        started = time.perf_counter()
        again = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed_again = time.perf_counter() - started
    rate = args.messages / elapsed
    print(f"messages: {args.messages} ({total_kb / args.messages:.1f} KB average, {total_kb / 1024:.1f} MB in all)")
    print(f"bare stdlib parse (message_from_bytes + get_body + get_content): {bare:8.0f} msg/s")
    print(f"listbot import (whole process, parse + classify + extract + store): {rate:8.0f} msg/s")
    print(f"ratio import / bare: {rate / bare:.2f}x   (target >= 0.25x; and >= 500 msg/s)")
    print(f"peak RSS of the import process: {rss_mb:.0f} MB   (target < 200 MB)")
    print(f"second import of the same mbox (adds nothing): {args.messages / elapsed_again:.0f} msg/s; "
          f"{again.stdout.strip()}")
    print(f"first import said: {result.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
