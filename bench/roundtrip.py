"""Benchmark: a command mail APPENDed to Dovecot -> the bot's reply at an aiosmtpd receiver.

Each mail is APPENDed once and timed twice in the same run: by a bare IMAP client IDLE-ing on the
same mailbox (the floor: Dovecot holds every IDLE push back about 500 ms) and by the reply arriving
at the SMTP receiver. Prints p50/p99 of both, the differences, and the idle daemon's RSS (a separate
`listbot run` process). Targets (issue 3): p50 within floor + 100 ms, p99 within floor + 400 ms,
idle RSS below 80 MB.

The commands alternate `help` and `upcoming`, with --items deadlines and meetings in the store
(default 10,000), and their round trips are also printed apart. Target (issue 4): `upcoming` within
1.5x of `help`, p50 and p99.

    python bench/roundtrip.py [--messages 400] [--items 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aioimaplib
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from commands import fill  # noqa: E402  (bench/commands.py: the same 10,000 items)
from dovecot import Dovecot, dovecot_binary, free_port  # noqa: E402

from bot.app import serve  # noqa: E402
from bot.config import from_dict  # noqa: E402
from bot.store import Store  # noqa: E402

MEMBER = "ana@example.org"
PASSWORD_ENV = "LISTBOT_BENCH_IMAP_PASSWORD"


class Receiver:
    """aiosmtpd handler: when each reply (by In-Reply-To) arrived, on the monotonic clock."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        msg = email.message_from_bytes(envelope.content)
        with self.lock:
            self.count += 1
            self.arrived.setdefault((msg["In-Reply-To"] or "").strip(), now)
        return "250 OK"


class Watcher:
    """A bare aioimaplib client in IDLE: when each EXISTS push arrived (the floor)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.pushes: list[float] = []
        self.idling = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        client = aioimaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        await client.wait_hello_from_server()
        await client.login("listbot", "secret")
        await client.select("INBOX")
        while not stop.is_set():
            idle = await client.idle_start(timeout=60)
            self.idling.set()
            push_task = asyncio.ensure_future(client.wait_server_push(timeout=60))
            stopping = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({push_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            now = time.monotonic()
            stopping.cancel()
            self.idling.clear()
            if push_task in done:
                push = push_task.result()
                if isinstance(push, list) and any(b"EXISTS" in bytes(x) for x in push):
                    self.pushes.append(now)
            else:
                push_task.cancel()
            client.idle_done()
            await asyncio.wait_for(idle, 10)
        await client.logout()


COMMANDS = ("help", "upcoming")


def command(n: int) -> bytes:
    name = COMMANDS[n % len(COMMANDS)]
    return (
        f"From: Ana <{MEMBER}>\r\nTo: listbot@example.org\r\nSubject: {name}\r\n"
        f"Message-ID: <bench-rt-{n}@example.org>\r\n\r\n{name}\r\n"
    ).encode()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def config_data(server: Dovecot, smtp_port: int, folder: Path, mailbox: str = "INBOX") -> dict[str, Any]:
    roster = folder / "roster.txt"
    roster.write_text(MEMBER + "\n")
    return {
        "bot": {"address": "listbot@example.org"},
        "embedded": {"enabled": False},
        "imap": {"host": "127.0.0.1", "port": server.port, "username": "listbot", "password_env": PASSWORD_ENV,
                 "security": "none", "mailbox": mailbox, "timeout_seconds": 10},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none", "password_env": ""},
        "store": {"path": str(folder / f"store-{mailbox}.sqlite3")},
        "members": {"roster": str(roster), "rate_per_hour": 1_000_000, "global_rate_per_hour": 1_000_000},
    }


async def measure(server: Dovecot, smtp_port: int, receiver: Receiver, folder: Path, count: int, items: int) -> tuple[
    list[float], list[float]
]:
    config = from_dict(config_data(server, smtp_port, folder))
    store = Store.open(config.store.path)
    fill(store, items, config.list.timezone)
    store.close()
    stop, ready = asyncio.Event(), asyncio.Event()
    daemon = asyncio.create_task(serve(config, stop=stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 15)
    watcher = Watcher(server.port)
    watch_stop = asyncio.Event()
    watch_task = asyncio.create_task(watcher.run(watch_stop))
    appender = aioimaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    await appender.wait_hello_from_server()
    await appender.login("listbot", "secret")
    floor: list[float] = []
    roundtrip: list[float] = []
    try:
        for n in range(count):
            await asyncio.wait_for(watcher.idling.wait(), 10)
            await asyncio.sleep(0.05)  # both IDLEs settled on the server side
            pushes = len(watcher.pushes)
            mid = f"<bench-rt-{n}@example.org>"
            began = time.monotonic()
            await appender.append(command(n), mailbox="INBOX")
            deadline = began + 15
            while mid not in receiver.arrived or len(watcher.pushes) == pushes:
                if time.monotonic() > deadline:
                    raise SystemExit(f"message {n}: no reply or no push within 15 s")
                await asyncio.sleep(0.002)
            roundtrip.append(receiver.arrived[mid] - began)
            floor.append(watcher.pushes[pushes] - began)
            if (n + 1) % 50 == 0:
                print(f"  {n + 1}/{count}", file=sys.stderr)
    finally:
        await appender.logout()
        watch_stop.set()
        await asyncio.wait_for(watch_task, 10)
        stop.set()
        await asyncio.wait_for(daemon, 10)
    return floor, roundtrip


def idle_rss(server: Dovecot, smtp_port: int, folder: Path) -> float:
    """RSS (MiB) of a `listbot run` process that has caught up and sat in IDLE for 3 s."""
    import imaplib

    box = imaplib.IMAP4("127.0.0.1", server.port)
    box.login("listbot", "secret")
    box.create("Idle")
    box.logout()
    data = config_data(server, smtp_port, folder, mailbox="Idle")
    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            lines.append(f"{key} = {value!r}".replace("'", '"').replace("True", "true").replace("False", "false"))
    path = folder / "idle.toml"
    path.write_text("\n".join(lines) + "\n")
    env = {**os.environ, PASSWORD_ENV: server.password, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(path)], env=env, cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        store = folder / "store-Idle.sqlite3"
        deadline = time.monotonic() + 15
        import sqlite3

        while True:
            if proc.poll() is not None:
                raise SystemExit(f"listbot run exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            if store.exists():
                db = sqlite3.connect(store)
                try:
                    synced = db.execute("SELECT count(*) FROM mailbox_state").fetchone()[0]
                except sqlite3.Error:
                    synced = 0
                db.close()
                if synced:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("listbot run did not sync within 15 s")
            time.sleep(0.1)
        time.sleep(3)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return rss_kb / 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400, help="command mails to time (default 400)")
    parser.add_argument("--items", type=int, default=10_000, help="items in the store (default 10,000)")
    args = parser.parse_args(argv)
    if dovecot_binary() is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 2
    server = Dovecot()
    os.environ[PASSWORD_ENV] = server.password
    receiver = Receiver()
    smtp_port = free_port()
    controller = Controller(receiver, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    folder = Path(tempfile.mkdtemp(prefix="listbot-bench-"))
    try:
        server.start()
        floor, roundtrip = asyncio.run(measure(server, smtp_port, receiver, folder, args.messages, args.items))
        ms = 1000.0
        f50, f99 = percentile(floor, 50) * ms, percentile(floor, 99) * ms
        r50, r99 = percentile(roundtrip, 50) * ms, percentile(roundtrip, 99) * ms
        replies = len([key for key in receiver.arrived if key])
        print(f"messages: {len(roundtrip)} (replies received: {replies}; mails at the receiver in all, with"
              f" the list reminders for the stored items: {receiver.count})")
        print(f"APPEND -> IDLE push (floor):   p50 {f50:7.1f} ms   p99 {f99:7.1f} ms"
              f"   mean {statistics.mean(floor) * ms:7.1f} ms")
        print(f"APPEND -> reply at SMTP:       p50 {r50:7.1f} ms   p99 {r99:7.1f} ms"
              f"   mean {statistics.mean(roundtrip) * ms:7.1f} ms")
        print(f"above the floor:               p50 {r50 - f50:+7.1f} ms   p99 {r99 - f99:+7.1f} ms"
              f"   (targets: p50 <= +100 ms: {'met' if r50 - f50 <= 100 else 'MISSED'},"
              f" p99 <= +400 ms: {'met' if r99 - f99 <= 400 else 'MISSED'})", flush=True)
        per = {name: roundtrip[i::len(COMMANDS)] for i, name in enumerate(COMMANDS)}
        for name, values in per.items():
            print(f"  {name:9s} ({len(values)}):         p50 {percentile(values, 50) * ms:7.1f} ms"
                  f"   p99 {percentile(values, 99) * ms:7.1f} ms")
        q50 = percentile(per["upcoming"], 50) / percentile(per["help"], 50)
        q99 = percentile(per["upcoming"], 99) / percentile(per["help"], 99)
        print(f"upcoming/help with {args.items} items: p50 {q50:.2f}x   p99 {q99:.2f}x"
              f"   (target <= 1.5x: {'met' if q50 <= 1.5 and q99 <= 1.5 else 'MISSED'})", flush=True)
        rss = idle_rss(server, smtp_port, folder)
        print(f"idle daemon RSS: {rss:.1f} MiB (target < 80 MiB: {'met' if rss < 80 else 'MISSED'})")
    finally:
        controller.stop()
        server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
