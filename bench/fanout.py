"""Benchmark: 5,000 queued mails drained by the outbox Sender over one SMTP connection, beside bare
aiosmtplib -> aiosmtpd on one connection in the same run.

The receiver (aiosmtpd, counting only) runs in its own process so that it does not share the GIL
with the client being measured. Each side runs `--rounds` times, alternating; medians are printed,
with the ratio. Target (issue 3): the outbox at least 0.7x the bare rate. The Sender marks each mail
sent in the store after its 250 and before the next mail begins (the crash-safety rule).

    python bench/fanout.py [--mails 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BODY = (
    "Reminder: contributions to the background paper are due on Friday 13 March 2026 (in 7 days).\n\n"
    + "The coordinators will circulate the revised outline and a list of open questions. " * 16
    + "\n\n-- \nlistbot, the assistant of the Working Group list\n"
)


def make_mail(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "listbot <listbot@example.org>"
    msg["To"] = f"member{n:05d}@example.org"
    msg["Subject"] = f"Reminder: background paper due in 7 days ({n})"
    msg["Message-ID"] = f"<fanout.{n}@example.org>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(BODY)
    return msg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int) -> None:
    """The receiver process: aiosmtpd on 127.0.0.1:port that accepts and counts every mail."""
    from aiosmtpd.smtp import SMTP as Server

    class Count:
        n = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            Count.n += 1
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Server(Count(), hostname="bench"), "127.0.0.1", port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def bare(port: int, mails: list[EmailMessage]) -> tuple[float, float]:
    """(msg/s, client CPU ms per mail) of aiosmtplib alone: one connection, MAIL/RCPT/DATA per mail."""
    import aiosmtplib

    raws = [(m["To"], m.as_bytes(policy=SMTP)) for m in mails]
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="example.org")
    await client.connect()
    began, cpu = time.perf_counter(), time.process_time()
    for to, raw in raws:
        await client.sendmail("listbot@example.org", [to], raw)
    took, cpu = time.perf_counter() - began, time.process_time() - cpu
    await client.quit()
    return len(raws) / took, 1000 * cpu / len(raws)


async def outbox(port: int, mails: list[EmailMessage], folder: Path) -> tuple[float, float, float]:
    """(msg/s draining the outbox with the Sender, client CPU ms per mail, msg/s queueing into it)."""
    from bot.config import from_dict
    from bot.outbox import queue_mail
    from bot.smtp import Sender
    from bot.store import AsyncStore, Store

    path = folder / f"bench-{time.monotonic_ns()}.sqlite3"
    config = from_dict({
        "bot": {"address": "listbot@example.org"},
        "embedded": {"enabled": False},
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
        "store": {"path": str(path)},
    })
    store = Store.open(path)
    now = datetime.now(UTC)
    began = time.perf_counter()
    for n, msg in enumerate(mails):
        queue_mail(store, msg, config=config, idem_key=f"bench:{n}", now=now)
    queue_rate = len(mails) / (time.perf_counter() - began)
    astore = AsyncStore(store)
    stop = asyncio.Event()
    sender = Sender(config, astore)
    began, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(sender.run(stop))
    while (await astore.run(Store.outbox_counts)).get("sent", 0) < len(mails):
        assert not task.done(), task
        await asyncio.sleep(0.02)
    took, cpu = time.perf_counter() - began, time.process_time() - cpu
    stop.set()
    await task
    await asyncio.to_thread(astore.close)
    return len(mails) / took, 1000 * cpu / len(mails), queue_rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    port = free_port()
    receiver = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        mails = [make_mail(n) for n in range(args.mails)]
        size = len(mails[0].as_bytes(policy=SMTP))
        bare_rates: list[float] = []
        outbox_rates: list[float] = []
        queue_rates: list[float] = []
        bare_cpu: list[float] = []
        outbox_cpu: list[float] = []
        with tempfile.TemporaryDirectory(prefix="listbot-fanout-") as tmp:
            for _ in range(args.rounds):
                rate, cpu = asyncio.run(bare(port, mails))
                bare_rates.append(rate)
                bare_cpu.append(cpu)
                drain, cpu, queue = asyncio.run(outbox(port, mails, Path(tmp)))
                outbox_rates.append(drain)
                outbox_cpu.append(cpu)
                queue_rates.append(queue)
    finally:
        receiver.terminate()
        receiver.wait(timeout=5)
    b, o = statistics.median(bare_rates), statistics.median(outbox_rates)
    print(f"{args.mails} mails of {size} bytes, one SMTP connection, receiver in its own process, {args.rounds} rounds")
    print(f"bare aiosmtplib -> aiosmtpd: {b:8.0f} msg/s  (rounds: {', '.join(f'{r:.0f}' for r in bare_rates)})")
    print(f"outbox Sender drain:         {o:8.0f} msg/s  (rounds: {', '.join(f'{r:.0f}' for r in outbox_rates)})")
    pairs = ", ".join(f"{x / y:.2f}" for x, y in zip(outbox_rates, bare_rates, strict=True))
    print(f"ratio outbox/bare:           {o / b:8.2f}      (target >= 0.70; round by round: {pairs})")
    bc, oc = statistics.median(bare_cpu), statistics.median(outbox_cpu)
    print(f"client CPU per mail:         bare {bc:.3f} ms, outbox {oc:.3f} ms (sender + store thread): "
          f"CPU-bound ceiling ratio {bc / oc:.2f}")
    print(f"queueing into the outbox:    {statistics.median(queue_rates):8.0f} msg/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
