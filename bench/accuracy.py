"""Accuracy benchmark: listbot's extraction and a dateparser baseline, scored by the corpus's score.py in one run.

    python bench/accuracy.py [CORPUS_DIR]     (default: ../shared/corpus/dev beside the repository)

Writes JSON lines in the `listbot parse --json` shape for both, runs score.py on each and prints the figures side
by side, the kind accuracy against the labels, and milliseconds per message.

The baseline is deliberately simple and honest: dateparser.search_dates (English, RELATIVE_BASE = the message
date, PREFER_DATES_FROM = future) on each sentence; every date in a sentence with a deadline cue word is a
deadline, every date in a sentence with a meeting cue word is a meeting.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import extract  # noqa: E402
from bot.message import Message, read_message  # noqa: E402
from bot.rules import load_rules  # noqa: E402

DEADLINE_WORDS = re.compile(
    r"(?i)\b(deadline|due|by|until|no later than|submit|submission|send|feedback|register|registration)\b"
)
MEETING_WORDS = re.compile(r"(?i)\b(meeting|call|session|workshop|conference|webinar|held|take place)\b")


def _record(path: Path, msg: Message, body: dict[str, Any]) -> dict[str, Any]:
    return {"file": str(path), "message_id": msg.message_id, "subject": msg.subject, "date": msg.date.isoformat(), **body}


def run_listbot(files: list[Path], messages: list[Message]) -> tuple[list[dict[str, Any]], float, list[str]]:
    rules = load_rules()
    out, kinds = [], []
    t0 = time.perf_counter()
    for path, msg in zip(files, messages, strict=True):
        ex = extract.analyze(msg, rules)
        out.append(_record(path, msg, extract.to_json(ex)))
        kinds.append(ex.kind)
    return out, (time.perf_counter() - t0) * 1000 / max(1, len(files)), kinds


def run_baseline(files: list[Path], messages: list[Message]) -> tuple[list[dict[str, Any]], float]:
    from dateparser.search import search_dates

    out = []
    t0 = time.perf_counter()
    for path, msg in zip(files, messages, strict=True):
        settings = {"RELATIVE_BASE": msg.date.replace(tzinfo=None), "PREFER_DATES_FROM": "future"}
        deadlines, meetings = [], []
        for sentence in re.split(r"(?<=[.!?])\s+|\n{2,}", msg.text):
            if not sentence.strip():
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    found = search_dates(sentence, languages=["en"], settings=settings) or []
                except Exception:
                    found = []
            for text, when in found:
                item = {"text": text, "approx": False, "conflict": None, "past": when.date() < msg.date.date()}
                if DEADLINE_WORDS.search(sentence):
                    deadlines.append({"due": when.date().isoformat(), "what": "", "who": None, **item})
                if MEETING_WORDS.search(sentence):
                    meetings.append({"start": when.date().isoformat(), "end": None, "what": "", "where": None, **item})
        body = {"kind": "other", "rules": [], "deadlines": deadlines, "meetings": meetings,
                "action_items": [], "links": [], "summary": []}
        out.append(_record(path, msg, body))
    return out, (time.perf_counter() - t0) * 1000 / max(1, len(files))


def score(corpus: Path, records: list[dict[str, Any]]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        name = f.name
    proc = subprocess.run([sys.executable, str(corpus.parent / "score.py"), str(corpus), name],
                          capture_output=True, text=True, check=False)
    Path(name).unlink()
    return proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus" / "dev"))
    ap.add_argument("--quiet", action="store_true", help="only the totals, not the per-case table")
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    files = sorted(corpus.glob("*.eml"))
    if not files:
        print(f"no .eml files in {corpus}", file=sys.stderr)
        return 2
    received = datetime(2000, 1, 1, tzinfo=UTC)
    messages = [read_message(p.read_bytes(), received=received) for p in files]
    ours, ours_ms, kinds = run_listbot(files, messages)
    base, base_ms = run_baseline(files, messages)
    labels = {p.stem: json.loads(p.with_suffix(".json").read_text()) for p in files if p.with_suffix(".json").exists()}
    right = sum(1 for p, k in zip(files, kinds, strict=True) if labels.get(p.stem, {}).get("kind") == k)
    ours_score, base_score = score(corpus, ours), score(corpus, base)
    if not args.quiet:
        print("== listbot, per case")
        print(ours_score)
        for p, k in zip(files, kinds, strict=True):
            want = labels.get(p.stem, {}).get("kind")
            if want != k:
                print(f"kind {p.stem}: {k} (label {want})")
        print()
    print(f"corpus {corpus} ({len(files)} posts)")
    print(f"{'':10s} {'figures (score.py)':s}")
    print(f"{'listbot':10s} {ours_score.strip().splitlines()[-1]}")
    print(f"{'baseline':10s} {base_score.strip().splitlines()[-1]}")
    print(f"{'':10s} kind accuracy: listbot {right}/{len(labels)}, baseline (no classifier) "
          f"{sum(1 for v in labels.values() if v.get('kind') == 'other')}/{len(labels)}")
    print(f"{'':10s} ms per message: listbot {ours_ms:.2f}, dateparser baseline {base_ms:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
