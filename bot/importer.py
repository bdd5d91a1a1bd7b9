"""Reading mail out of files: single .eml files, folders of them, Maildirs and mbox archives."""

from __future__ import annotations

import logging
import mailbox
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


_SEPARATOR = re.compile(rb"From \S+\s+(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+[A-Z][a-z]{2}\s+\d")


@dataclass(frozen=True)
class RawMail:
    source: str  # where it came from: a path, or "archive.mbox#12"
    data: bytes | None
    error: str | None = None  # the file could not be read: why


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _is_mbox(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(5) == b"From "
    except OSError:
        return False


def count(paths: list[str]) -> int | None:
    """How many messages `read_paths` will yield, when that is cheap to know (for a progress bar)."""
    total = 0
    for p in map(Path, paths):
        if p.is_dir() and _is_maildir(p):
            total += sum(len(os.listdir(p / sub)) for sub in ("cur", "new"))
        elif p.is_dir():
            total += sum(1 for _ in p.rglob("*.eml"))
        elif p.is_file() and _is_mbox(p):
            return None
        else:
            total += 1
    return total


def read_paths(paths: list[str]) -> Iterator[RawMail]:
    """Every message under `paths`, in order; an unreadable one is yielded with its error, never raised."""
    for name in paths:
        path = Path(name)
        if not path.exists():
            yield RawMail(name, None, "no such file or folder")
        elif path.is_dir() and _is_maildir(path):
            yield from _maildir(path)
        elif path.is_dir():
            files = sorted(path.rglob("*.eml"))
            if not files:
                yield RawMail(name, None, "folder holds no .eml files and is not a Maildir")
            for f in files:
                yield _file(f)
        elif _is_mbox(path):
            yield from _mbox(path)
        else:
            yield _file(path)


def _file(path: Path) -> RawMail:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return RawMail(str(path), None, exc.strerror or str(exc))
    if not data.strip():
        return RawMail(str(path), None, "empty file")
    return RawMail(str(path), data)


def _maildir(path: Path) -> Iterator[RawMail]:
    try:
        box = mailbox.Maildir(str(path), factory=None, create=False)
        keys = sorted(box.keys())
    except OSError as exc:
        yield RawMail(str(path), None, f"not a readable Maildir: {exc}")
        return
    for key in keys:
        try:
            yield RawMail(f"{path}#{key}", box.get_bytes(key))
        except (OSError, KeyError) as exc:
            yield RawMail(f"{path}#{key}", None, str(exc))


def _mbox(path: Path) -> Iterator[RawMail]:
    """An mbox split on its "From " lines (mboxrd: ">From " at a line start is unquoted one level)."""
    try:
        f = path.open("rb")
    except OSError as exc:
        yield RawMail(str(path), None, exc.strerror or str(exc))
        return
    with f:
        index = 0
        lines: list[bytes] = []
        for line in f:
            # A separator is "From <sender> <asctime date>" at the start or after a blank line: a body
            # line "From the meeting ..." that a careless archiver did not quote is not one.
            if line.startswith(b"From ") and (not lines or not lines[-1].strip()) and _SEPARATOR.match(line):
                if lines:
                    yield RawMail(f"{path}#{index}", _unquote(lines))
                    index += 1
                lines = []
            else:
                lines.append(line)
        if lines:
            yield RawMail(f"{path}#{index}", _unquote(lines))


def _unquote(lines: list[bytes]) -> bytes:
    data = b"".join(lines)
    if b">From " not in data:  # most messages quote nothing: no need to look at each line
        return data
    return b"".join(line[1:] if line.startswith(b">From ") or line.startswith(b">>From ") else line for line in lines)
