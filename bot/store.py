"""The store: SQLite, numbered migrations, aware UTC datetimes. The only module that speaks SQL."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")


class StoreError(Exception):
    """The store cannot be opened or used (said in one line)."""


def to_utc_text(d: datetime) -> str:
    """An aware datetime as ISO 8601 UTC text: the only way datetimes are stored."""
    if d.tzinfo is None:
        raise ValueError(f"naive datetime {d!r}: the store keeps aware UTC datetimes only")
    return d.astimezone(UTC).isoformat(timespec="seconds")


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _json_list(values: Iterable[Any]) -> str:
    """json.dumps(list(values)): most lists a message stores (rules, links, action items) are empty, and a call
    of the JSON encoder for '[]' costs more than a line of Python."""
    items = list(values)
    return json.dumps(items) if items else "[]"


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run statements one by one (executescript would COMMIT the migration's transaction early)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _m1(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL UNIQUE,
            subject TEXT NOT NULL DEFAULT '',
            sender TEXT NOT NULL DEFAULT '',
            date_utc TEXT NOT NULL,
            kind TEXT,
            rules TEXT NOT NULL DEFAULT '[]',
            summary TEXT,
            links TEXT NOT NULL DEFAULT '[]',
            action_items TEXT NOT NULL DEFAULT '[]',
            route TEXT NOT NULL DEFAULT 'list',
            truncated INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            source TEXT NOT NULL DEFAULT '',
            processed_utc TEXT NOT NULL
        );
        CREATE INDEX messages_date ON messages(kind, date_utc);

        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            type TEXT NOT NULL CHECK (type IN ('deadline', 'meeting')),
            what TEXT NOT NULL,
            who TEXT,
            start TEXT NOT NULL,
            "end" TEXT,
            start_utc TEXT NOT NULL,
            end_utc TEXT NOT NULL,
            all_day INTEGER NOT NULL,
            "where" TEXT,
            approx INTEGER NOT NULL DEFAULT 0,
            conflict TEXT,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
            uncertain INTEGER NOT NULL DEFAULT 0,
            sequence INTEGER NOT NULL DEFAULT 0,
            created_utc TEXT NOT NULL,
            updated_utc TEXT NOT NULL
        );
        CREATE INDEX items_window ON items(status, end_utc, start_utc);

        CREATE TABLE item_sources (
            item_id INTEGER NOT NULL REFERENCES items(id),
            message_id TEXT NOT NULL,
            text TEXT NOT NULL,
            added_utc TEXT NOT NULL,
            PRIMARY KEY (item_id, message_id)
        );

        CREATE TABLE item_history (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id),
            at_utc TEXT NOT NULL,
            actor TEXT NOT NULL,
            field TEXT NOT NULL,
            old TEXT,
            new TEXT,
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX item_history_item ON item_history(item_id);

        CREATE TABLE mailbox_state (
            mailbox TEXT PRIMARY KEY,
            uidvalidity INTEGER NOT NULL,
            last_uid INTEGER NOT NULL,
            last_sync_utc TEXT NOT NULL
        );

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            idem_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL DEFAULT '',
            recipient TEXT NOT NULL,
            sender TEXT NOT NULL,
            message_id TEXT NOT NULL,
            raw BLOB NOT NULL,
            send_after_utc TEXT NOT NULL,
            give_up_utc TEXT NOT NULL,
            created_utc TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
            sent_utc TEXT
        );
        CREATE INDEX outbox_due ON outbox(status, send_after_utc);

        CREATE TABLE members (
            address TEXT PRIMARY KEY,
            timezone TEXT,
            digest INTEGER NOT NULL DEFAULT 0,
            stopped INTEGER NOT NULL DEFAULT 0,
            unsubscribe_token TEXT UNIQUE,
            created_utc TEXT NOT NULL
        );

        CREATE TABLE reminders (
            id INTEGER PRIMARY KEY,
            address TEXT NOT NULL,
            item_id INTEGER REFERENCES items(id),
            offsets TEXT,
            at_utc TEXT,
            text TEXT,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled', 'done')),
            created_utc TEXT NOT NULL
        );
        CREATE INDEX reminders_address ON reminders(address, status);

        CREATE TABLE tokens (
            token TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            payload TEXT NOT NULL,
            expires_utc TEXT NOT NULL,
            used_utc TEXT
        );

        CREATE TABLE replies (
            address TEXT NOT NULL,
            at_utc TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'reply'
        );
        CREATE INDEX replies_address ON replies(address, at_utc);

        CREATE TABLE kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """
    )


def _m2(db: sqlite3.Connection) -> None:
    """Email commands: "is this a reply to our own answer?" (outbox by Message-ID) and the global reply cap
    (replies by time) are looked up on every mail to the bot; without these they scan whole tables."""
    _script(
        db,
        """
        CREATE INDEX outbox_message_id ON outbox(message_id);
        CREATE INDEX replies_at ON replies(at_utc)
        """,
    )


# Numbered migrations: append only; PRAGMA user_version is how many have run.
def _m3(db: sqlite3.Connection) -> None:
    """Index the day of an item: every stored item looks for its twin announced on the same day."""
    _script(db, "CREATE INDEX items_day ON items(type, substr(start, 1, 10))")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_m1, _m2, _m3)


@dataclass(frozen=True)
class Item:
    id: int
    type: str
    what: str
    who: str | None
    start: str  # as read: YYYY-MM-DD, or a datetime with its UTC offset
    end: str | None
    start_utc: datetime
    end_utc: datetime
    all_day: bool
    where: str | None
    approx: bool
    conflict: str | None
    status: str
    uncertain: bool
    sequence: int
    created_utc: datetime
    updated_utc: datetime


@dataclass(frozen=True)
class Source:
    message_id: str
    subject: str
    date_utc: datetime | None
    text: str


@dataclass(frozen=True)
class Change:
    at_utc: datetime
    actor: str
    field: str
    old: str | None
    new: str | None
    note: str


@dataclass(frozen=True)
class OutMail:
    id: int
    idem_key: str
    recipient: str
    sender: str
    message_id: str
    raw: bytes
    send_after_utc: datetime
    give_up_utc: datetime
    attempts: int
    status: str
    last_error: str | None


def span_utc(start: str, end: str | None, tz: ZoneInfo) -> tuple[datetime, datetime, bool]:
    """(start instant, end instant, all-day) of an item; date-only values are whole days in `tz`."""

    def parse(value: str, end_of_day: bool) -> tuple[datetime, bool]:
        if len(value) <= 10:
            d = date.fromisoformat(value)
            if end_of_day:
                d += timedelta(days=1)
            return datetime.combine(d, time(0), tzinfo=tz).astimezone(UTC), True
        dt = datetime.fromisoformat(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        return dt.astimezone(UTC), False

    s, all_day = parse(start, False)
    if end:
        e, _ = parse(end, True)
    else:  # a day lasts to its end; a timed item with no end is a moment
        e, _ = parse(start, True) if all_day else (s, False)
    return s, max(e, s), all_day


_WORD = re.compile(r"[a-z0-9]{3,}")
_STOP = frozenset(
    "the and for with from that this will are all our you your its has have been into about should "
    "must can may please send submit submission submissions deadline due date".split()
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def similar(a: str, b: str) -> bool:
    """Two descriptions name the same thing: enough shared content words (Jaccard >= 0.34, or one inside the other)."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return a.strip().lower() == b.strip().lower()
    shared = len(wa & wb)
    return shared / len(wa | wb) >= 0.34 or shared == min(len(wa), len(wb)) >= 2


class Store:
    """One SQLite database. Not thread-safe: the daemon reaches it through AsyncStore's one thread."""

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = str(path)
        try:
            if path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, path)
            store.migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"store {path}: cannot be opened: {exc}") from None
        return store

    def close(self) -> None:
        self.db.close()

    def migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"store {self.path}: schema version {version} is newer than this listbot knows ({len(MIGRATIONS)})"
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                migration(self.db)
                self.db.execute(f"PRAGMA user_version = {number}")

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

    # -- messages ---------------------------------------------------------------------------------

    def has_message(self, message_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM messages WHERE message_id = ?", (message_id,)).fetchone() is not None

    def known_message_ids(self, message_ids: Iterable[str]) -> set[str]:
        ids = list(message_ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0] for r in self.db.execute(f"SELECT message_id FROM messages WHERE message_id IN ({marks})", chunk)
            )
        return found

    def add_message(
        self,
        *,
        message_id: str,
        subject: str,
        sender: str,
        date: datetime,
        now: datetime,
        kind: str | None = None,
        rules: Iterable[str] = (),
        summary: Any = None,
        links: Any = (),
        action_items: Any = (),
        route: str = "list",
        truncated: bool = False,
        error: str | None = None,
        source: str = "",
    ) -> bool:
        """Record a processed message; False (and nothing changes) when its Message-ID is known already."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO messages (message_id, subject, sender, date_utc, kind, rules, summary, links,"
            " action_items, route, truncated, error, source, processed_utc)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                message_id,
                subject,
                sender,
                to_utc_text(date),
                kind,
                _json_list(rules),
                json.dumps(summary) if summary is not None else None,
                _json_list(links),
                _json_list(action_items),
                route,
                int(truncated),
                error,
                source,
                to_utc_text(now),
            ),
        )
        return cur.rowcount == 1

    def message(self, message_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM messages WHERE message_id = ?", (message_id,)).fetchone()
        return _message_row(row) if row else None

    def reports_since(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Meeting reports (with their summaries) posted in [since, until), oldest first."""
        rows = self.db.execute(
            "SELECT * FROM messages WHERE kind = 'meeting_report' AND date_utc >= ? AND date_utc < ? AND error IS NULL"
            " ORDER BY date_utc",
            (to_utc_text(since), to_utc_text(until)),
        )
        return [_message_row(r) for r in rows]

    def messages_of_kind(self, kind: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM messages WHERE kind = ? AND date_utc >= ? AND date_utc < ? AND error IS NULL ORDER BY date_utc",
            (kind, to_utc_text(since), to_utc_text(until)),
        )
        return [_message_row(r) for r in rows]

    def latest_report(self) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT * FROM messages WHERE kind = 'meeting_report' AND error IS NULL ORDER BY date_utc DESC LIMIT 1"
        ).fetchone()
        return _message_row(row) if row else None

    def failures(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM messages WHERE error IS NOT NULL ORDER BY processed_utc DESC LIMIT ?", (limit,)
        )
        return [_message_row(r) for r in rows]

    # -- items ------------------------------------------------------------------------------------

    def save_item(
        self,
        *,
        type: str,
        what: str,
        start: str,
        end: str | None,
        tz: ZoneInfo,
        now: datetime,
        message_id: str,
        text: str,
        who: str | None = None,
        where: str | None = None,
        approx: bool = False,
        conflict: str | None = None,
        extended: bool = False,
        actor: str = "reader",
    ) -> tuple[int, str]:
        """File one extracted item: (item id, 'new' | 'source' | 'extended').

        The same thing announced again (same type, same day, similar description) gains a source;
        an extension ("deadline extended to ...") moves the matching item and keeps its history."""
        start_utc, end_utc, all_day = span_utc(start, end, tz)
        stamp = to_utc_text(now)  # once: every row written here carries it
        day = start[:10]
        # Only the two columns looked at (a whole items row is 17 values to build, for each candidate)
        candidates = self.db.execute(
            "SELECT id, what FROM items WHERE type = ? AND status = 'active' AND substr(start, 1, 10) = ?", (type, day)
        ).fetchall()
        for row in candidates:
            if similar(row["what"], what):
                self._add_source(row["id"], message_id, text, stamp)
                return row["id"], "source"
        if extended and type == "deadline":
            window = to_utc_text(start_utc - timedelta(days=366))
            rows = self.db.execute(
                "SELECT * FROM items WHERE type = 'deadline' AND status = 'active' AND start_utc >= ?"
                " ORDER BY start_utc DESC",
                (window,),
            ).fetchall()
            for row in rows:
                if row["start"] != start and similar(row["what"], what):
                    self.update_item(
                        row["id"],
                        {"start": start, "end": end},
                        tz=tz,
                        now=now,
                        actor=actor,
                        note=f"extended in {message_id}",
                    )
                    self._add_source(row["id"], message_id, text, stamp)
                    return row["id"], "extended"
        cur = self.db.execute(
            'INSERT INTO items (type, what, who, start, "end", start_utc, end_utc, all_day, "where", approx, conflict,'
            " uncertain, created_utc, updated_utc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                type,
                what,
                who,
                start,
                end,
                to_utc_text(start_utc),
                to_utc_text(end_utc),
                int(all_day),
                where,
                int(approx),
                conflict,
                int(bool(conflict) or approx),
                stamp,
                stamp,
            ),
        )
        item_id = int(cur.lastrowid or 0)
        self._add_source(item_id, message_id, text, stamp)
        self.db.execute(
            "INSERT INTO item_history (item_id, at_utc, actor, field, old, new, note) VALUES (?,?,?,?,?,?,?)",
            (item_id, stamp, actor, "created", None, start, message_id),
        )
        return item_id, "new"

    def _add_source(self, item_id: int, message_id: str, text: str, added_utc: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO item_sources (item_id, message_id, text, added_utc) VALUES (?,?,?,?)",
            (item_id, message_id, text, added_utc),
        )

    EDITABLE = ("what", "who", "start", "end", "where", "status", "uncertain", "conflict", "approx")

    def update_item(
        self, item_id: int, changes: dict[str, Any], *, tz: ZoneInfo, now: datetime, actor: str, note: str = ""
    ) -> Item:
        """Change fields of an item, recording each change (who, when, old, new) and bumping its SEQUENCE."""
        row = self.db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(item_id)
        sets: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in self.EDITABLE:
                raise ValueError(f"field {key!r} cannot be edited (one of: {', '.join(self.EDITABLE)})")
            old = row[key]
            if isinstance(value, bool):
                value = int(value)
            if old == value:
                continue
            sets[key] = value
            self.db.execute(
                "INSERT INTO item_history (item_id, at_utc, actor, field, old, new, note) VALUES (?,?,?,?,?,?,?)",
                (item_id, to_utc_text(now), actor, key, None if old is None else str(old),
                 None if value is None else str(value), note),
            )
        if "start" in sets or "end" in sets:
            start = sets.get("start", row["start"])
            end = sets.get("end", row["end"])
            s, e, all_day = span_utc(start, end, tz)
            sets.update(start_utc=to_utc_text(s), end_utc=to_utc_text(e), all_day=int(all_day))
        if sets:
            sets["updated_utc"] = to_utc_text(now)
            assignments = ", ".join(f'"{k}" = ?' for k in sets)
            self.db.execute(
                f"UPDATE items SET {assignments}, sequence = sequence + 1 WHERE id = ?", (*sets.values(), item_id)
            )
        item = self.item(item_id)
        assert item is not None
        return item

    def item(self, item_id: int) -> Item | None:
        row = self.db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return _item(row) if row else None

    def sources(self, item_id: int) -> list[Source]:
        rows = self.db.execute(
            "SELECT s.message_id, s.text, m.subject, m.date_utc FROM item_sources s"
            " LEFT JOIN messages m ON m.message_id = s.message_id WHERE s.item_id = ? ORDER BY s.added_utc",
            (item_id,),
        )
        return [
            Source(r["message_id"], r["subject"] or "", from_utc_text(r["date_utc"]) if r["date_utc"] else None, r["text"])
            for r in rows
        ]

    def history(self, item_id: int) -> list[Change]:
        rows = self.db.execute("SELECT * FROM item_history WHERE item_id = ? ORDER BY id", (item_id,))
        return [Change(from_utc_text(r["at_utc"]), r["actor"], r["field"], r["old"], r["new"], r["note"]) for r in rows]

    def upcoming(
        self, now: datetime, days: float, *, type: str | None = None, include_uncertain: bool = True, limit: int = 1000
    ) -> list[Item]:
        """Active items not over by `now` that start within `days`, soonest first."""
        until = now + timedelta(days=days)
        sql = "SELECT * FROM items WHERE status = 'active' AND end_utc > ? AND start_utc < ?"
        args: list[Any] = [to_utc_text(now), to_utc_text(until)]
        if type:
            sql += " AND type = ?"
            args.append(type)
        if not include_uncertain:
            sql += " AND uncertain = 0"
        sql += " ORDER BY start_utc, id LIMIT ?"
        args.append(limit)
        return [_item(r) for r in self.db.execute(sql, args)]

    def items(self, *, status: str | None = None) -> list[Item]:
        sql = "SELECT * FROM items"
        args: tuple[Any, ...] = ()
        if status:
            sql += " WHERE status = ?"
            args = (status,)
        return [_item(r) for r in self.db.execute(sql + " ORDER BY start_utc, id", args)]

    def uncertain_items(self, now: datetime) -> list[Item]:
        rows = self.db.execute(
            "SELECT * FROM items WHERE status = 'active' AND uncertain = 1 AND end_utc > ? ORDER BY start_utc",
            (to_utc_text(now),),
        )
        return [_item(r) for r in rows]

    def add_manual_item(
        self, *, type: str, what: str, start: str, end: str | None, tz: ZoneInfo, now: datetime, actor: str
    ) -> int:
        """An item a moderator added by hand (its source is the moderator)."""
        item_id, _ = self.save_item(
            type=type, what=what, start=start, end=end, tz=tz, now=now,
            message_id=f"moderator:{actor}", text=f"added by {actor}", actor=actor,
        )
        return item_id

    # -- mailbox position -------------------------------------------------------------------------

    def mailbox_position(self, mailbox: str) -> tuple[int, int] | None:
        row = self.db.execute("SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = ?", (mailbox,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_mailbox_position(self, mailbox: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, last_sync_utc) VALUES (?,?,?,?)"
            " ON CONFLICT(mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid,"
            " last_sync_utc = excluded.last_sync_utc",
            (mailbox, uidvalidity, last_uid, to_utc_text(now)),
        )

    def mailbox_states(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM mailbox_state ORDER BY mailbox")]

    # -- outbox -----------------------------------------------------------------------------------

    def enqueue(
        self,
        *,
        idem_key: str,
        recipient: str,
        sender: str,
        message_id: str,
        raw: bytes,
        send_after: datetime,
        give_up: datetime,
        now: datetime,
        kind: str = "",
    ) -> bool:
        """Queue one mail; False when a mail with this idempotency key was queued before (nothing changes)."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO outbox (idem_key, kind, recipient, sender, message_id, raw, send_after_utc,"
            " give_up_utc, created_utc) VALUES (?,?,?,?,?,?,?,?,?)",
            (idem_key, kind, recipient, sender, message_id, raw, to_utc_text(send_after), to_utc_text(give_up),
             to_utc_text(now)),
        )
        return cur.rowcount == 1

    def has_outgoing(self, idem_key: str) -> bool:
        return self.db.execute("SELECT 1 FROM outbox WHERE idem_key = ?", (idem_key,)).fetchone() is not None

    def due_mail(self, now: datetime, limit: int = 100) -> list[OutMail]:
        rows = self.db.execute(
            "SELECT * FROM outbox WHERE status = 'queued' AND send_after_utc <= ? ORDER BY send_after_utc, id LIMIT ?",
            (to_utc_text(now), limit),
        )
        return [_outmail(r) for r in rows]

    def next_send_after(self) -> datetime | None:
        row = self.db.execute("SELECT min(send_after_utc) FROM outbox WHERE status = 'queued'").fetchone()
        return from_utc_text(row[0]) if row and row[0] else None

    def mark_sent(self, mail_id: int, now: datetime) -> None:
        self.db.execute(
            "UPDATE outbox SET status = 'sent', sent_utc = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
            (to_utc_text(now), mail_id),
        )

    def mark_retry(self, mail_id: int, error: str, send_after: datetime) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, send_after_utc = ? WHERE id = ?",
            (error, to_utc_text(send_after), mail_id),
        )

    def mark_failed(self, mail_id: int, error: str) -> None:
        self.db.execute(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?",
            (error, mail_id),
        )

    def outbox_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT status, count(*) FROM outbox GROUP BY status")}

    def failed_mail(self, limit: int = 20) -> list[OutMail]:
        rows = self.db.execute("SELECT * FROM outbox WHERE status = 'failed' ORDER BY id DESC LIMIT ?", (limit,))
        return [_outmail(r) for r in rows]

    def note_mail_error(self, mail_id: int, error: str) -> None:
        """Record why a mail is still waiting (the server cannot be reached) without counting an attempt."""
        self.db.execute("UPDATE outbox SET last_error = ? WHERE id = ? AND status = 'queued'", (error, mail_id))

    def fail_expired_mail(self, now: datetime, error: str) -> list[OutMail]:
        """Queued mail whose give-up time has passed is marked failed with `error`; the mails so marked."""
        with self.transaction():
            rows = [
                _outmail(r)
                for r in self.db.execute(
                    "SELECT * FROM outbox WHERE status = 'queued' AND give_up_utc <= ? ORDER BY id", (to_utc_text(now),)
                )
            ]
            self.db.executemany(
                "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?", [(error, m.id) for m in rows]
            )
        return rows

    # -- key/value (last digest time and the like) ------------------------------------------------

    def get_value(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_value(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- members, personal reminders, tokens, reply log (commands) ---------------------------------

    def member(self, address: str) -> dict[str, Any] | None:
        """A member's settings row (timezone, digest, stopped), or None when they never set anything."""
        row = self.db.execute("SELECT * FROM members WHERE address = ?", (address.lower(),)).fetchone()
        return dict(row) if row else None

    def set_member(self, address: str, *, now: datetime, **fields: Any) -> None:
        """Create or change a member's settings: timezone (str | None), digest (bool), stopped (bool)."""
        allowed = ("timezone", "digest", "stopped")
        for key in fields:
            if key not in allowed:
                raise ValueError(f"member field {key!r} is not one of {allowed}")
        values = {k: int(v) if isinstance(v, bool) else v for k, v in fields.items()}
        self.db.execute(
            "INSERT OR IGNORE INTO members (address, created_utc) VALUES (?, ?)", (address.lower(), to_utc_text(now))
        )
        if values:
            assignments = ", ".join(f"{k} = ?" for k in values)
            self.db.execute(f"UPDATE members SET {assignments} WHERE address = ?", (*values.values(), address.lower()))

    def member_counts(self) -> dict[str, int]:
        row = self.db.execute(
            "SELECT count(*), coalesce(sum(digest), 0), coalesce(sum(stopped), 0) FROM members"
        ).fetchone()
        return {"known": row[0], "digest": row[1], "stopped": row[2]}

    def add_reminder(
        self,
        address: str,
        *,
        now: datetime,
        item_id: int | None = None,
        offsets: list[str] | None = None,
        at: datetime | None = None,
        text: str | None = None,
    ) -> int:
        """A personal reminder: for an item (item_id + offsets), for all items (offsets only), or one's own (at + text)."""
        cur = self.db.execute(
            "INSERT INTO reminders (address, item_id, offsets, at_utc, text, created_utc) VALUES (?,?,?,?,?,?)",
            (
                address.lower(),
                item_id,
                json.dumps(offsets) if offsets is not None else None,
                to_utc_text(at) if at else None,
                text,
                to_utc_text(now),
            ),
        )
        return int(cur.lastrowid or 0)

    def reminders_of(self, address: str) -> list[dict[str, Any]]:
        """A member's active reminders, oldest first (offsets decoded, at_utc an aware datetime)."""
        rows = self.db.execute(
            "SELECT * FROM reminders WHERE address = ? AND status = 'active' ORDER BY id", (address.lower(),)
        )
        out = []
        for r in rows:
            d = dict(r)
            d["offsets"] = json.loads(d["offsets"]) if d["offsets"] else None
            d["at_utc"] = from_utc_text(d["at_utc"]) if d["at_utc"] else None
            out.append(d)
        return out

    def cancel_reminder(self, address: str, reminder_id: int) -> bool:
        """Cancel one of `address`'s active reminders; False when there is no such active reminder of theirs."""
        cur = self.db.execute(
            "UPDATE reminders SET status = 'cancelled' WHERE id = ? AND address = ? AND status = 'active'",
            (reminder_id, address.lower()),
        )
        return cur.rowcount == 1

    def add_token(self, token: str, address: str, payload: str, *, expires: datetime) -> None:
        self.db.execute(
            "INSERT INTO tokens (token, address, payload, expires_utc) VALUES (?,?,?,?)",
            (token, address.lower(), payload, to_utc_text(expires)),
        )

    def use_token(self, token: str, address: str, *, now: datetime) -> tuple[str, str | None]:
        """Redeem a token once: ('ok', payload) or ('unknown' | 'used' | 'expired' | 'other-sender', None)."""
        row = self.db.execute("SELECT * FROM tokens WHERE token = ?", (token,)).fetchone()
        if row is None:
            return "unknown", None
        if row["address"] != address.lower():
            return "other-sender", None
        if row["used_utc"]:
            return "used", None
        if from_utc_text(row["expires_utc"]) <= now:
            return "expired", None
        cur = self.db.execute(
            "UPDATE tokens SET used_utc = ? WHERE token = ? AND used_utc IS NULL", (to_utc_text(now), token)
        )
        if cur.rowcount != 1:
            return "used", None
        return "ok", row["payload"]

    def record_reply(self, address: str, *, now: datetime, kind: str = "reply") -> None:
        """Log one answer (reply | notice | refusal) for the rate limits."""
        self.db.execute(
            "INSERT INTO replies (address, at_utc, kind) VALUES (?,?,?)", (address.lower(), to_utc_text(now), kind)
        )

    def reply_count(self, since: datetime, *, address: str | None = None, kind: str | None = None) -> int:
        sql = "SELECT count(*) FROM replies WHERE at_utc > ?"
        args: list[Any] = [to_utc_text(since)]
        if address is not None:
            sql += " AND address = ?"
            args.append(address.lower())
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        return int(self.db.execute(sql, args).fetchone()[0])

    def sent_message_ids(self, message_ids: Iterable[str]) -> set[str]:
        """Which of these Message-IDs are of mail the bot queued (a reply to the bot's own answer)."""
        ids = [m for m in message_ids if m][:50]
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        return {r[0] for r in self.db.execute(f"SELECT message_id FROM outbox WHERE message_id IN ({marks})", ids)}

    def savepoint(self) -> _Savepoint:
        """`with store.savepoint():` - everything inside is undone if it raises (nests inside a transaction)."""
        return _Savepoint(self.db)

    def upcoming_count(self, now: datetime, days: float, *, type: str | None = None) -> int:
        """How many items `upcoming(now, days, type=type)` would list without a limit."""
        sql = "SELECT count(*) FROM items WHERE status = 'active' AND end_utc > ? AND start_utc < ?"
        args: list[Any] = [to_utc_text(now), to_utc_text(now + timedelta(days=days))]
        if type:
            sql += " AND type = ?"
            args.append(type)
        return int(self.db.execute(sql, args).fetchone()[0])

    def report(self, message_number: int) -> dict[str, Any] | None:
        """A meeting report by its number (messages.id)."""
        row = self.db.execute(
            "SELECT * FROM messages WHERE id = ? AND kind = 'meeting_report' AND error IS NULL", (message_number,)
        ).fetchone()
        return _message_row(row) if row else None

    def report_near(self, day: date, tz: ZoneInfo) -> dict[str, Any] | None:
        """The meeting report posted on `day` (in `tz`), else the first one after it within a week."""
        start = datetime.combine(day, time(0), tzinfo=tz)
        row = self.db.execute(
            "SELECT * FROM messages WHERE kind = 'meeting_report' AND error IS NULL AND date_utc >= ? AND date_utc < ?"
            " ORDER BY date_utc LIMIT 1",
            (to_utc_text(start), to_utc_text(start + timedelta(days=8))),
        ).fetchone()
        return _message_row(row) if row else None

    # -- schedule: reminders and digests ---------------------------------------------------------

    def reminder_candidates(self, now: datetime, horizon: timedelta) -> list[Item]:
        """Active items not over at `now` that start before now + horizon (what a reminder could be about)."""
        rows = self.db.execute(
            "SELECT * FROM items WHERE status = 'active' AND end_utc > ? AND start_utc < ? ORDER BY start_utc, id",
            (to_utc_text(now), to_utc_text(now + horizon)),
        )
        return [_item(r) for r in rows]

    def reminder_offsets(self) -> set[str]:
        """Every offset that an active `remind me` row asks for (how far ahead the tick must look)."""
        out: set[str] = set()
        for (text,) in self.db.execute("SELECT DISTINCT offsets FROM reminders WHERE status = 'active' AND offsets IS NOT NULL"):
            try:
                out.update(str(o) for o in json.loads(text))
            except (ValueError, TypeError):
                continue
        return out

    def items_passed_between(self, since: datetime, until: datetime) -> list[Item]:
        """Active items that began or ended in [since, until): reminders still missing for them are useless now."""
        rows = self.db.execute(
            "SELECT * FROM items WHERE status = 'active' AND ((end_utc >= ? AND end_utc < ?)"
            " OR (start_utc >= ? AND start_utc < ?)) ORDER BY start_utc, id",
            (to_utc_text(since), to_utc_text(until), to_utc_text(since), to_utc_text(until)),
        )
        return [_item(r) for r in rows]

    def dates_set(self, item_ids: Iterable[int]) -> dict[int, datetime]:
        """When each item got its current date (created, or start/end last edited)."""
        ids = list(item_ids)
        out: dict[int, datetime] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT item_id, max(at_utc) FROM item_history WHERE item_id IN ({marks})"
                " AND field IN ('created', 'start', 'end') GROUP BY item_id",
                chunk,
            )
            out.update((r[0], from_utc_text(r[1])) for r in rows)
        return out

    def item_subscriptions(self, item_ids: Iterable[int]) -> list[dict[str, Any]]:
        """Active `remind me` rows about these items, and those about every item (item_id None, no time):
        {id, address, item_id, offsets (list or None)}."""
        ids = list(item_ids)
        out: list[dict[str, Any]] = []
        rows: list[sqlite3.Row] = list(
            self.db.execute(
                "SELECT id, address, item_id, offsets FROM reminders WHERE status = 'active' AND item_id IS NULL"
                " AND at_utc IS NULL ORDER BY id"
            )
        )
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows.extend(
                self.db.execute(
                    "SELECT id, address, item_id, offsets FROM reminders WHERE status = 'active'"
                    f" AND item_id IN ({marks}) ORDER BY id",
                    chunk,
                )
            )
        for r in rows:
            offsets = json.loads(r["offsets"]) if r["offsets"] else None
            out.append({"id": r["id"], "address": r["address"], "item_id": r["item_id"], "offsets": offsets})
        return out

    def notes_between(self, since: datetime | None, until: datetime) -> list[dict[str, Any]]:
        """Active `remind me` rows with a time and no item (a note to oneself) due in [since, until)."""
        rows = self.db.execute(
            "SELECT id, address, at_utc, text FROM reminders WHERE status = 'active' AND item_id IS NULL"
            " AND at_utc IS NOT NULL AND at_utc >= ? AND at_utc < ? ORDER BY at_utc, id",
            (to_utc_text(since) if since else "", to_utc_text(until)),
        )
        return [
            {"id": r["id"], "address": r["address"], "at_utc": from_utc_text(r["at_utc"]), "text": r["text"] or ""}
            for r in rows
        ]

    def finish_reminder(self, reminder_id: int) -> None:
        self.db.execute("UPDATE reminders SET status = 'done' WHERE id = ? AND status = 'active'", (reminder_id,))

    def members_info(self, addresses: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Member rows by lower-case address: {address, timezone, digest, stopped, unsubscribe_token}."""
        wanted = sorted({a.lower() for a in addresses})
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT address, timezone, digest, stopped, unsubscribe_token FROM members"
                f" WHERE address IN ({marks})",
                chunk,
            )
            out.update((r["address"], dict(r)) for r in rows)
        return out

    def digest_members(self) -> list[dict[str, Any]]:
        """Members who asked for the personal digest and have not stopped all mail."""
        rows = self.db.execute(
            "SELECT address, timezone, digest, stopped, unsubscribe_token FROM members"
            " WHERE digest = 1 AND stopped = 0 ORDER BY address"
        )
        return [dict(r) for r in rows]

    def queued_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these idempotency keys have an outbox row already."""
        wanted = list(keys)
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(f"SELECT idem_key FROM outbox WHERE idem_key IN ({marks})", chunk))
        return found

    def unsubscribe_token(self, address: str, *, now: datetime, new_token: Callable[[], str]) -> str:
        """The member's unsubscribe token, made (with the member row, if need be) on first use."""
        address = address.lower()
        row = self.db.execute("SELECT unsubscribe_token FROM members WHERE address = ?", (address,)).fetchone()
        if row is not None and row[0]:
            return str(row[0])
        token = new_token()
        self.db.execute(
            "INSERT OR IGNORE INTO members (address, created_utc) VALUES (?, ?)", (address, to_utc_text(now))
        )
        self.db.execute("UPDATE members SET unsubscribe_token = ? WHERE address = ?", (token, address))
        return token

    def has_unsubscribe_token(self, token: str) -> bool:
        return self.db.execute("SELECT 1 FROM members WHERE unsubscribe_token = ?", (token,)).fetchone() is not None

    def unsubscribe_by_token(self, token: str, what: str) -> str | None:
        """One-click unsubscribe: 'digest' turns the personal digest off; 'all' stops all personal mail and
        cancels the member's reminders. The member's address, or None for an unknown token."""
        row = self.db.execute("SELECT address FROM members WHERE unsubscribe_token = ?", (token,)).fetchone()
        if row is None:
            return None
        address = str(row[0])
        with self.transaction():
            if what == "all":
                self.db.execute("UPDATE members SET stopped = 1, digest = 0 WHERE address = ?", (address,))
                self.db.execute(
                    "UPDATE reminders SET status = 'cancelled' WHERE address = ? AND status = 'active'", (address,)
                )
            else:
                self.db.execute("UPDATE members SET digest = 0 WHERE address = ?", (address,))
        return address


class _Savepoint:
    """SAVEPOINT ... RELEASE (ROLLBACK TO on error): one email command changes all it meant to, or nothing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("SAVEPOINT command")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type:
            self.db.execute("ROLLBACK TO command")
        self.db.execute("RELEASE command")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error); the connection runs in autocommit otherwise.

    Inside another transaction it is a SAVEPOINT, so a batch (an import commits every few hundred
    messages) can hold per-message transactions that each still roll back alone."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.nested = False

    def __enter__(self) -> sqlite3.Connection:
        self.nested = self.db.in_transaction
        self.db.execute("SAVEPOINT nested" if self.nested else "BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.nested:
            if exc_type:
                self.db.execute("ROLLBACK TO nested")
            self.db.execute("RELEASE nested")
        else:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _message_row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    for key in ("rules", "links", "action_items"):
        d[key] = json.loads(d[key] or "[]")
    d["summary"] = json.loads(d["summary"]) if d["summary"] else None
    d["date_utc"] = from_utc_text(d["date_utc"])
    return d


def _item(row: sqlite3.Row) -> Item:
    return Item(
        id=row["id"],
        type=row["type"],
        what=row["what"],
        who=row["who"],
        start=row["start"],
        end=row["end"],
        start_utc=from_utc_text(row["start_utc"]),
        end_utc=from_utc_text(row["end_utc"]),
        all_day=bool(row["all_day"]),
        where=row["where"],
        approx=bool(row["approx"]),
        conflict=row["conflict"],
        status=row["status"],
        uncertain=bool(row["uncertain"]),
        sequence=row["sequence"],
        created_utc=from_utc_text(row["created_utc"]),
        updated_utc=from_utc_text(row["updated_utc"]),
    )


def _outmail(row: sqlite3.Row) -> OutMail:
    return OutMail(
        id=row["id"],
        idem_key=row["idem_key"],
        recipient=row["recipient"],
        sender=row["sender"],
        message_id=row["message_id"],
        raw=bytes(row["raw"]),
        send_after_utc=from_utc_text(row["send_after_utc"]),
        give_up_utc=from_utc_text(row["give_up_utc"]),
        attempts=row["attempts"],
        status=row["status"],
        last_error=row["last_error"],
    )


class AsyncStore:
    """The store for async code: every call runs on one dedicated thread, so the event loop never blocks."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`await astore.run(Store.upcoming, now, 30)` runs `store.upcoming(now, 30)` on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, self.store, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.store.close()
