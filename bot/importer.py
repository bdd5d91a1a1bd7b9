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


# Patterns that start with a fixed byte: re scans for it at C speed (for "^" in MULTILINE mode it tries every
# position, and bytes.find of these needles is slower still: they end in a space, which prose is full of).
_FROM_AFTER_NEWLINE = re.compile(rb"\nFrom ")
_QUOTED_FROM_AFTER_NEWLINE = re.compile(rb"\n>>?From ")
_QUOTED_FROM = re.compile(rb"^>(?=>?From )", re.MULTILINE)  # the '>' that mboxrd put before a body's "From "
_BLOCK = 1 << 20  # bytes read at a time (then up to the end of a line)


def _from_lines(data: bytes) -> Iterator[int]:
    """Where the lines of data that start with "From " start."""
    if data.startswith(b"From "):
        yield 0
    for m in _FROM_AFTER_NEWLINE.finditer(data):
        yield m.start() + 1


def _mbox(path: Path) -> Iterator[RawMail]:
    """An mbox split on its "From " lines (mboxrd: ">From " at a line start is unquoted one level).

    Read in blocks of whole lines, in which re finds the lines that start with "From " (a Python test of each
    line cost more than the rest of the split)."""
    try:
        f = path.open("rb")
    except OSError as exc:
        yield RawMail(str(path), None, exc.strerror or str(exc))
        return
    with f:
        index = 0
        pieces: list[bytes] = []  # the message read so far, in runs of whole lines
        blank = True  # the message so far is empty or ends in a blank line
        while True:
            data = f.read(_BLOCK)
            if not data:
                break
            if not data.endswith(b"\n"):
                data += f.readline()  # up to the end of the line (at the end of the file, there may be none)
            start = 0  # where the part of the current message in this block starts
            for at in _from_lines(data):
                end = data.find(b"\n", at) + 1 or len(data)
                # A separator is "From <sender> <asctime date>" at the start or after a blank line: a body
                # line "From the meeting ..." that a careless archiver did not quote is not one.
                if at == start:
                    after_blank = blank if at == 0 else True
                else:
                    after_blank = not data[data.rfind(b"\n", 0, at - 1) + 1 : at].strip()
                if not after_blank or not _SEPARATOR.match(data, at, end):  # endpos: the line, as it was read alone
                    continue
                if at > start:
                    pieces.append(data[start:at])
                if pieces:
                    yield RawMail(f"{path}#{index}", _unquote(b"".join(pieces)))
                    index += 1
                pieces = []
                blank = True
                start = end
            if start < len(data):
                pieces.append(data[start:])
                blank = not data[data.rfind(b"\n", 0, len(data) - 1) + 1 :].strip()
        if pieces:
            yield RawMail(f"{path}#{index}", _unquote(b"".join(pieces)))


def _unquote(data: bytes) -> bytes:
    # Most messages quote nothing: only a line that starts with ">From " or ">>From " is changed.
    if not data.startswith((b">From ", b">>From ")) and _QUOTED_FROM_AFTER_NEWLINE.search(data) is None:
        return data
    return _QUOTED_FROM.sub(b"", data)
