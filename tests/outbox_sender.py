"""Run only the outbox Sender against a config's store until SIGTERM (the crash test's stand-in daemon)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config
from bot.smtp import Sender
from bot.store import AsyncStore, Store


async def main(config_path: str) -> int:
    config = load_config(config_path)
    astore = AsyncStore(Store.open(config.resolve(config.store.path)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Sender(config, astore).run(stop)
    finally:
        await asyncio.to_thread(astore.close)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(sys.argv[1])))
