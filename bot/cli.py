"""The command-line program `listbot`."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import __version__
from bot.config import Config, ConfigError, load_config
from bot.store import Item, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

DESCRIPTION = """\
listbot: an assistant for a working group's mailing list. It reads the list's posts, finds the
deadlines and meetings in them, answers members' email commands, and sends reminders and digests.

Start with `listbot run`: with no --config it runs on an embedded loopback mail server, so it
needs no account. `listbot import` + `listbot upcoming` work on archives without any server."""


def _iso_now(value: str) -> datetime:
    """--now: an ISO 8601 date or datetime; naive values are read in UTC."""
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or datetime: {value!r}") from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="listbot", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"listbot {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="configuration file (default: built-in defaults, see config/example.toml)"
    )
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("parse", parents=[common], help="show what listbot reads out of mail files (nothing is stored)")
    p.add_argument("files", nargs="+", metavar="FILE", help=".eml files")
    p.add_argument("--json", action="store_true", help="one JSON object per file per line (the stable contract)")
    p.add_argument("--explain", action="store_true", help="say which rules hit and why each item was taken")

    p = sub.add_parser("import", parents=[common], help="read .eml files, Maildirs or mbox archives into the store")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".eml file, folder of .eml files, Maildir or mbox")

    p = sub.add_parser("upcoming", parents=[common], help="print the deadlines and meetings ahead")
    p.add_argument("--days", type=_positive, default=30.0, help="how many days ahead (default 30)")
    p.add_argument("--tz", type=_zone, help="show times in this zone (default: [list] timezone)")
    p.add_argument("--now", type=_iso_now, help="pretend it is this time (ISO 8601; default: now)")

    sub.add_parser("run", parents=[common], help="run the daemon (embedded mail server unless configured otherwise)")
    sub.add_parser("status", parents=[common], help="last sync, mailbox position, outbox, failures, Mailman roster, next jobs")
    p = sub.add_parser(
        "check-config", parents=[common],
        help="validate a configuration file and try both mail servers (and Mailman, when set)",
    )
    p.add_argument("config_file", metavar="FILE")

    p = sub.add_parser("send", parents=[common], help="send one mail through the configured SMTP server (try the bot)")
    p.add_argument("body", nargs="?", default="", help="the mail's text (default: empty)")
    p.add_argument("--to", help="recipient (default: the bot's address)")
    p.add_argument("--from", dest="sender", default="member@example.org", help="sender (default member@example.org)")
    p.add_argument("--subject", default="help", help="subject (default: help)")

    p = sub.add_parser("digest", parents=[common], help="print the weekly digest that would go out")
    p.add_argument("--preview", action="store_true", required=True, help="print it, send nothing")
    p.add_argument("--as", dest="as_address", metavar="ADDRESS", help="the personal digest of this member")
    p.add_argument("--now", type=_iso_now, help="pretend it is this time (ISO 8601; default: now)")

    p = sub.add_parser("reminders", parents=[common], help="list every reminder that would be sent in a window")
    p.add_argument("--from", dest="start", type=_iso_now, required=True, metavar="ISO")
    p.add_argument("--to", dest="end", type=_iso_now, required=True, metavar="ISO")

    p = sub.add_parser("ics", parents=[common], help="write all items as an iCalendar feed to standard output")
    return parser


# Subcommands implemented outside this module: "module:function(args, config) -> int".
_ELSEWHERE = {
    "run": "bot.app:cli_run",
    "status": "bot.app:cli_status",
    "check-config": "bot.app:cli_check_config",
    "send": "bot.embedded:cli_send",
    "digest": "bot.digest:cli_digest",
    "reminders": "bot.reminders:cli_reminders",
    "ics": "bot.ics:cli_ics",
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    if args.command == "run":
        level = min(level, logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        # The libraries' INFO lines (every SMTP verb, every job added) drown listbot's own.
        for name in ("mail.log", "apscheduler", "aioimaplib", "pymap"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        config = load_config(args.config_file if args.command == "check-config" else args.config)
    except ConfigError as exc:
        print(f"listbot: {exc}", file=sys.stderr)
        return 2
    handlers: dict[str, Callable[[argparse.Namespace, Config], int]] = {
        "parse": cmd_parse,
        "import": cmd_import,
        "upcoming": cmd_upcoming,
    }
    try:
        if args.command in handlers:
            return handlers[args.command](args, config)
        module, _, function = _ELSEWHERE[args.command].partition(":")
        try:
            fn = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError):
            print(f"listbot: '{args.command}' is not available in this version", file=sys.stderr)
            return 2
        return int(fn(args, config))
    except ConfigError as exc:
        print(f"listbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _open_store(config: Config) -> Store:
    return Store.open(config.resolve(config.store.path))


def cmd_parse(args: argparse.Namespace, config: Config) -> int:
    from bot import extract
    from bot.message import read_message
    from bot.rules import RuleError, load_rules

    try:
        rules = load_rules()
    except RuleError as exc:
        print(f"listbot: {exc}", file=sys.stderr)
        return 2
    read = 0
    for name in args.files:
        try:
            with open(name, "rb") as f:
                raw = f.read()
        except OSError as exc:
            _parse_error(args, name, exc.strerror or str(exc))
            continue
        try:
            msg = read_message(raw, received=datetime.now(UTC), max_body_bytes=config.bot.max_body_bytes)
            ex = extract.analyze(msg, rules)
        except Exception as exc:  # a bug, not the mail's fault: say so, go on with the next file
            log.exception("%s: cannot be read", name)
            _parse_error(args, name, f"{type(exc).__name__}: {exc}")
            continue
        read += 1
        record = {
            "file": name,
            "message_id": msg.message_id,
            "subject": msg.subject,
            "date": msg.date.isoformat(),
            **extract.to_json(ex),
        }
        if args.json:
            if args.explain:
                record["explain"] = list(ex.explain)
            print(json.dumps(record, ensure_ascii=False))
        else:
            _print_parse(record, ex.explain if args.explain else ())
    return 0 if read or not args.files else 1


def _parse_error(args: argparse.Namespace, name: str, error: str) -> None:
    if args.json:
        print(json.dumps({"file": name, "error": error}, ensure_ascii=False))
    else:
        print(f"{name}: error: {error}")


def _print_parse(record: dict[str, Any], explain: tuple[str, ...]) -> None:
    print(f"{record['file']}")
    print(f"  subject  {record['subject']}")
    print(f"  date     {record['date']}   kind: {record['kind']}   rules: {', '.join(record['rules']) or '-'}")
    for d in record["deadlines"]:
        flags = _flags(d)
        print(f"  deadline {d['due']:<25} {d['what']}{flags}")
    for m in record["meetings"]:
        when = m["start"] + (f" - {m['end']}" if m.get("end") else "")
        print(f"  meeting  {when:<25} {m['what']}{_flags(m)}")
    for a in record["action_items"]:
        print(f"  action   {(a.get('who') or '-'):<25} {a['what']}" + (f" (by {a['due']})" if a.get("due") else ""))
    for link in record["links"]:
        print(f"  link     {link['url']}  {link['label']}")
    for line in explain:
        print(f"  why      {line}")
    print()


def _flags(item: dict[str, Any]) -> str:
    flags = []
    if item.get("approx"):
        flags.append("approx")
    if item.get("past"):
        flags.append("past")
    if item.get("conflict"):
        flags.append(f"CONFLICT: {item['conflict']}")
    return f"  [{'; '.join(flags)}]" if flags else ""


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def cmd_import(args: argparse.Namespace, config: Config) -> int:
    from bot import importer
    from bot.ingest import ingest_post, record_failure
    from bot.message import read_message
    from bot.rules import RuleError, load_rules

    try:
        rules = load_rules()
    except RuleError as exc:
        print(f"listbot: {exc}", file=sys.stderr)
        return 2
    store = _open_store(config)
    counts = {"new": 0, "known": 0, "skipped": 0}
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=importer.count(args.paths), unit="msg", file=sys.stderr)

    def one(raw: importer.RawMail) -> str:
        if raw.data is None:
            _say(progress, f"{raw.source}: skipped: {raw.error}")
            return "skipped"
        now = datetime.now(UTC)
        try:
            msg = read_message(raw.data, received=now, max_body_bytes=config.bot.max_body_bytes)
            result = ingest_post(store, msg, config=config, rules=rules, now=now, source=raw.source)
        except Exception as exc:  # a bug, not the file's fault: report it, record it, go on
            log.exception("%s: cannot be imported", raw.source)
            _say(progress, f"{raw.source}: skipped: {type(exc).__name__}: {exc}")
            record_failure(store, f"<failed:{raw.source}>", str(exc), now=now, date=now, source=raw.source)
            return "skipped"
        return "new" if result.new else "known"

    try:
        # One transaction per batch: a commit per message would cost more than reading it.
        for batch in _batches(importer.read_paths(args.paths), 200):
            with store.transaction():
                for raw in batch:
                    counts[one(raw)] += 1
                    if progress is not None:
                        progress.update(1)
    finally:
        if progress is not None:
            progress.close()
        store.close()
    new, known, bad = counts["new"], counts["known"], counts["skipped"]
    print(f"imported {new} new messages, {known} already known, {bad} skipped")
    return 0 if new or known or not bad else 1


def _say(progress: object, line: str) -> None:
    if progress is not None:
        progress.write(line)  # type: ignore[attr-defined]
    else:
        print(line, file=sys.stderr)


def cmd_upcoming(args: argparse.Namespace, config: Config) -> int:
    tz: ZoneInfo = args.tz or config.tz
    now: datetime = args.now or datetime.now(UTC)
    store = _open_store(config)
    try:
        items: list[Item] = store.upcoming(now, args.days)
    finally:
        store.close()
    print(f"Deadlines and meetings from {now.astimezone(tz):%a %d %b %Y %H:%M} ({tz.key}) for {args.days:g} days:")
    if not items:
        print("  nothing ahead.")
    for item in items:
        print("  " + format_item(item, tz))
    return 0


def format_item(item: Item, tz: ZoneInfo) -> str:
    """One line for an item: when (in `tz`, and UTC for timed items), kind, what, flags, id."""
    if item.all_day:
        when = item.start[:10]
        if item.end and item.end[:10] != item.start[:10]:
            when += f" to {item.end[:10]}"
        when = f"{when:<23}"
    else:
        local = item.start_utc.astimezone(tz)
        when = f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
        if item.end_utc > item.start_utc:
            when += f"-{item.end_utc.astimezone(tz):%H:%M}"
        when += f" ({item.start_utc:%H:%M} UTC)"
    flags = []
    if item.approx:
        flags.append("approx")
    if item.conflict:
        flags.append(f"unsure: {item.conflict}")
    elif item.uncertain:
        flags.append("unconfirmed")
    extra = f"  [{'; '.join(flags)}]" if flags else ""
    return f"#{item.id:<4} {when}  {item.type:<8}  {item.what}{extra}"
