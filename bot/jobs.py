"""Scheduled jobs: reminders tick and weekly digest. (Stub until the scheduling issue lands.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.config import Config
from bot.store import AsyncStore


def add_jobs(
    scheduler: Any, *, config: Config, astore: AsyncStore, wake_sender: Callable[[], None], now_fn: Callable[[], datetime]
) -> None:
    """Add the scheduled jobs to an APScheduler 3 AsyncIOScheduler (none yet)."""
