"""Benchmark: `listbot import` of a generated mbox, beside the bare stdlib parse rate in the same run.

Prints messages/s for both, their ratio, and the import's peak RSS. Targets (issue 2): at least
0.25x the bare rate, at least 500 messages/s on one core, peak RSS below 200 MB.

    python bench/ingest.py [--messages 10000]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import email.utils
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

MONTHS = "January February March April May June July August September October November December".split()
# Prose like a working group's list that says nothing of a kind of post, so that no one sentence dominates the profile.
PARAGRAPHS = (
    "Several participants stressed the need for input from regions that are not yet represented. The coordinators "
    "keep a list of open questions and a revised outline of the background paper.",
    "A short note about the survey: it takes about ten minutes, and the answers are anonymous. If your "
    "organisation has already replied, there is no need to send a second response.",
    "On the question of translation, the secretariat confirmed that the final report will be available in "
    "English, French and Spanish. Volunteers who can review a draft translation are very welcome.",
    "Some members asked whether sessions could be recorded. The host platform allows it, but the speakers are "
    "asked first, and recordings are only shared with registered participants.",
    "I agree with the previous speakers that the draft is too long. Perhaps we could move the detailed "
    "examples to an annex and keep the main text focused on the recommendations?",
    "The case studies collected so far cover incident response, coordinated vulnerability disclosure and the "
    "security of connected devices; a few more from smaller organisations would make the picture more balanced.",
)
# Each post is of one kind, in the proportions of the hand-labeled real posts in ../shared/corpus/dev (7 reports,
# 5 invitations, 4 calls, 3 announcements, 3 replies of 22): (kind, weight, subject, paragraphs of its own, dated
# sentences). Without kinds, report wording in every post made 93% of them read as reports.
KINDS = (
    ("report", 7, "[WG] Notes of the call on {day} {month}",
     ("Thanks to everyone who joined the call. We went through the comments on section 3 one by one; most of "
      "them were accepted as proposed, and two need a second look by the editors before they can be merged.",
      "The group discussed the scope of the background paper and how to collect case studies from members. "
      "The coordinators will circulate the revised outline and a list of open questions."),
     ("Please send your comments on the draft by {day} {month}.", "We will meet again in {month}.",
      "Thank you all for joining the call today.")),
    ("invitation", 5, "[WG] Invitation: virtual meeting on {weekday} {day} {month}",
     ("You are invited to the next virtual meeting of the working group. The agenda and the dial-in details "
      "follow; please let the coordinators know if you would like to add an item.",),
     ("The next virtual meeting will take place on {weekday} {day} {month}, 14:00-15:30 UTC.",
      "Registration closes on {day} {month}.")),
    ("call", 4, "[WG] Call for contributions: case studies",
     ("We invite contributions to the background paper: short case studies of one or two pages describing "
      "a practice that worked, or one that did not, in your organisation.",),
     ("Contributions are due {day} {month} {year}.", "Please send your comments on the draft by {day} {month}.")),
    ("announcement", 3, "[WG] New publication and registration for the annual forum",
     ("The annual forum will be held in a hybrid format this year, and the programme will be published on "
      "the website in the coming weeks.",),
     ("Registration closes on {day} {month}.", "The report will be published on {day} {month} {year}.")),
    ("reply", 3, "Re: [WG] Draft outline of the background paper", (), ()),
)

SIGNATURE = "\n-- \nMember {n}\nPolicy Officer, Example Organisation\nhttps://example.org/people/{n}\n"
FOOTER = (
    "\n_______________________________________________\nWG mailing list\nwg@lists.example.org\n"
    "https://lists.example.org/mailman/listinfo/wg\n"
)


def _body_text(kind: tuple, rng: random.Random, target: datetime, size: int) -> list[str]:
    """Paragraphs of prose with the kind's own paragraphs and a few of its dated sentences, about `size` characters."""
    fields = {"day": target.day, "month": MONTHS[target.month - 1], "year": target.year, "weekday": f"{target:%A}"}
    paras = [rng.choice(kind[4]).format(**fields) for _ in range(rng.randint(2, 6))] if kind[4] else []
    paras += list(kind[3])
    length = sum(len(p) for p in paras)
    while length < size:
        para = " ".join(rng.choice(PARAGRAPHS) for _ in range(rng.randint(1, 3)))
        paras.insert(rng.randint(0, len(paras)), para)
        length += len(para) + 2
    return paras


def _plain(paras: list[str], i: int, rng: random.Random, date: datetime) -> str:
    """Wrapped at 72 columns like a mail client; some replies quote the previous post, some carry a signature."""
    text = "\n\n".join(textwrap.fill(p, 72) for p in paras)
    if rng.random() < 0.3:
        quoted = textwrap.fill(rng.choice(PARAGRAPHS), 70).split("\n")
        text += f"\n\nOn {email.utils.format_datetime(date - timedelta(days=1))}, Member {(i + 1) % 97} wrote:\n"
        text += "\n".join("> " + line for line in quoted)
    if rng.random() < 0.5:
        text += "\n" + SIGNATURE.format(n=i % 97)
    if rng.random() < 0.3:
        text += FOOTER
    return text + "\n"


def _html(paras: list[str]) -> str:
    out = ["<html><head><style>p {margin: 0}</style></head><body>"]
    for k, p in enumerate(paras):
        if k % 4 == 3:
            out.append(f'<p>{p} See <a href="https://example.org/docs/{k}">the document</a>.</p>')
        elif k % 5 == 4:
            out.append("<ul>" + "".join(f"<li>{s}.</li>" for s in p.split(". ") if s) + "</ul>")
        else:
            out.append(f"<p>{p}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def make_message(i: int, rng: random.Random) -> bytes:
    """One list post of 2-20 KB, of a kind drawn from KINDS: 60% text/plain (some quoted-printable), 20%
    multipart/alternative (text and HTML), 10% HTML only, 10% multipart/mixed with a PDF attachment."""
    date = datetime(2024, 1, 1, 9, tzinfo=UTC) + timedelta(hours=7 * i)
    target = date + timedelta(days=rng.randint(1, 60))
    kind = rng.choices(KINDS, weights=[k[1] for k in KINDS])[0]
    size = rng.randint(1_750, 17_500)  # of prose: headers, quotes, signatures and markup come on top
    shape = rng.random()
    msg = EmailMessage(policy=email.policy.SMTP.clone(linesep="\n"))
    msg["From"] = f"Member {i % 97} <member{i % 97}@example.org>"
    msg["To"] = "wg@lists.example.org"
    msg["Subject"] = kind[2].format(day=target.day, month=MONTHS[target.month - 1], weekday=f"{target:%A}")
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = f"<bench-{i}@example.org>"
    if shape < 0.6:
        paras = _body_text(kind, rng, target, size)
        msg.set_content(_plain(paras, i, rng, date), cte="quoted-printable" if shape < 0.1 else "8bit")
    elif shape < 0.8:
        paras = _body_text(kind, rng, target, size // 2)
        msg.set_content(_plain(paras, i, rng, date), cte="8bit")
        msg.add_alternative(_html(paras), subtype="html", cte="8bit")
    elif shape < 0.9:
        paras = _body_text(kind, rng, target, size)
        msg.set_content(_html(paras), subtype="html", cte="8bit")
    else:
        paras = _body_text(kind, rng, target, size // 3)
        msg.set_content(_plain(paras, i, rng, date), cte="8bit")
        blob = rng.randbytes(size // 3)
        msg.add_attachment(blob, maintype="application", subtype="pdf", filename=f"minutes-{i}.pdf")
    return msg.as_bytes()


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


# Runs `python -m bot ...` and then prints the peak RSS of its own address space (VmHWM, kB) on stderr. The
# ru_maxrss of a child is no use here: it also counts this process's pages (100 MB of generated mail), which the
# child shares from the fork until its exec.
RUN_AND_REPORT_PEAK = """
import os, runpy, sys
try:
    runpy.run_module("bot", run_name="__main__", alter_sys=True)
finally:
    if os.path.exists("/proc/self/status"):
        with open("/proc/self/status") as f:
            print("VmHWM", next((line.split()[1] for line in f if line.startswith("VmHWM:")), ""), file=sys.stderr)
"""


def _peak_mb(stderr: str) -> float:
    """The import's peak RSS from its last stderr line; without /proc, ru_maxrss (an upper bound)."""
    last = stderr.strip().rsplit("\n", 1)[-1].split()
    if len(last) == 2 and last[0] == "VmHWM" and last[1].isdigit():
        return int(last[1]) / 1024
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


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
        command = [sys.executable, "-c", RUN_AND_REPORT_PEAK, "import", "--config", str(config), str(mbox)]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        rss_mb = _peak_mb(result.stderr)
        if result.returncode != 0:
            print(result.stdout, result.stderr, file=sys.stderr)
            return 1
        started = time.perf_counter()
        again = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed_again = time.perf_counter() - started
        with sqlite3.connect(Path(tmp) / "bench.sqlite3") as db:
            kinds = db.execute("SELECT kind, COUNT(*) FROM messages GROUP BY kind ORDER BY 2 DESC").fetchall()
    rate = args.messages / elapsed
    print(f"messages: {args.messages} ({total_kb / args.messages:.1f} KB average, {total_kb / 1024:.1f} MB in all)")
    print(f"bare stdlib parse (message_from_bytes + get_body + get_content): {bare:8.0f} msg/s")
    print(f"listbot import (whole process, parse + classify + extract + store): {rate:8.0f} msg/s")
    print(f"ratio import / bare: {rate / bare:.2f}x   (target >= 0.25x; and >= 500 msg/s)")
    print(f"peak RSS of the import process: {rss_mb:.0f} MB   (target < 200 MB)")
    print(f"second import of the same mbox (adds nothing): {args.messages / elapsed_again:.0f} msg/s; "
          f"{again.stdout.strip()}")
    print(f"first import said: {result.stdout.strip()}")
    print("kinds as classified: " + ", ".join(f"{kind} {n / args.messages:.0%}" for kind, n in kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
