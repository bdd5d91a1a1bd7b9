"""The daemon's wiring: mailbox loop, outbox sender and scheduler; `listbot run`, `status`, `check-config`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import mailbox, mailman, router
from bot.config import Config, ConfigError
from bot.ingest import record_failure
from bot.store import AsyncStore, Store, StoreError, from_utc_text, to_utc_text

log = logging.getLogger(__name__)

# `listbot status` reads what the running daemon last wrote here.
STATUS_KEY = "daemon.status"
# How long each part gets to finish once stop is set (together well under the 5 s promised for SIGTERM).
STOP_MAILBOX_SECONDS = 2.5
STOP_SENDER_SECONDS = 1.5

Processor = Callable[..., router.Outcome]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def process_and_record(
    store: Store,
    mailbox_name: str,
    uidvalidity: int,
    uid: int,
    raw: bytes,
    *,
    config: Config,
    rules: Any,
    now: datetime,
    process: Processor,
) -> tuple[bool, router.Outcome | None]:
    """Process one fetched mail and move the mailbox position past it (on the store's thread).

    A mail whose processing raises is recorded with its error, so that it is skipped from now on,
    and the loop goes on: (False, None)."""
    source = f"imap:{mailbox_name}/{uidvalidity}/{uid}"
    outcome: router.Outcome | None = None
    try:
        outcome = process(store, raw, config=config, rules=rules, now=now, source=source)
        ok = True
    except Exception as exc:
        ok = False
        message_id = mailbox.message_id_of(raw) or f"<uid-{uidvalidity}-{uid}@listbot.invalid>"
        error = f"{type(exc).__name__}: {exc}"
        log.error("%s processing failed, recorded and skipped (%s): %s", message_id, source, error)
        log.debug("%s traceback", message_id, exc_info=True)
        try:
            record_failure(store, message_id, error, now=now, date=now, source=source)
        except Exception as exc2:
            log.error("%s failure could not be recorded: %s", message_id, exc2)
    store.set_mailbox_position(mailbox_name, uidvalidity, uid, now)
    return ok, outcome


def _record_unfetchable(store: Store, mailbox_name: str, uidvalidity: int, uid: int, error: str, now: datetime) -> None:
    message_id = f"<uid-{uidvalidity}-{uid}@listbot.invalid>"
    log.error("%s cannot be fetched, recorded and skipped: %s", message_id, error)
    record_failure(store, message_id, error, now=now, date=now, source=f"imap:{mailbox_name}/{uidvalidity}/{uid}")
    store.set_mailbox_position(mailbox_name, uidvalidity, uid, now)


class Pipeline:
    """The mailbox loop's sink: each message goes through the router on the store's thread."""

    def __init__(
        self,
        astore: AsyncStore,
        *,
        config: Config,
        rules: Any,
        now_fn: Callable[[], datetime],
        process: Processor,
        wake_sender: Callable[[], None],
    ) -> None:
        self.astore = astore
        self.config = config
        self.rules = rules
        self.now_fn = now_fn
        self.process = process
        self.wake_sender = wake_sender

    async def position(self, mailbox_name: str) -> tuple[int, int] | None:
        return await self.astore.run(Store.mailbox_position, mailbox_name)

    async def message(self, mailbox_name: str, uidvalidity: int, item: mailbox.Fetched) -> bool:
        ok, outcome = await self.astore.run(
            process_and_record, mailbox_name, uidvalidity, item.uid, item.raw,
            config=self.config, rules=self.rules, now=self.now_fn(), process=self.process,
        )
        if outcome is not None and outcome.queued_mail:
            self.wake_sender()  # a reply is queued: send it now, not at the sender's next poll
        return ok

    async def unfetchable(self, mailbox_name: str, uidvalidity: int, uid: int, error: str) -> None:
        await self.astore.run(_record_unfetchable, mailbox_name, uidvalidity, uid, error, self.now_fn())

    async def known(self, message_ids: list[str]) -> set[str]:
        return await self.astore.run(Store.known_message_ids, message_ids)

    async def synced(self, mailbox_name: str, uidvalidity: int, last_uid: int) -> None:
        await self.astore.run(Store.set_mailbox_position, mailbox_name, uidvalidity, last_uid, self.now_fn())


def _jobs_snapshot(scheduler: AsyncIOScheduler) -> list[dict[str, str | None]]:
    jobs = []
    for job in scheduler.get_jobs():
        when = getattr(job, "next_run_time", None)
        jobs.append({"id": job.id, "name": job.name, "next_utc": to_utc_text(when) if when else None})
    return sorted(jobs, key=lambda j: j["next_utc"] or "~")


async def serve(
    config: Config,
    *,
    stop: asyncio.Event,
    now_fn: Callable[[], datetime] = _utcnow,
    ready: asyncio.Event | None = None,
    process: Processor | None = None,
) -> None:
    """Run the daemon until `stop` is set: the mailbox loop, the outbox sender, the scheduled jobs.

    `ready` is set once the mailbox has been caught up and IDLE begins. `process` replaces
    router.process (tests use it to make processing fail). Raises ConfigError / MailboxError /
    StoreError for a problem at start (one line each); after a good start, errors are retried."""
    from bot.jobs import add_jobs
    from bot.smtp import Sender

    password = config.secret("imap", config.imap.password_env)
    mailman_password = _mailman_password(config)
    rules = _load_rules()
    store = Store.open(config.resolve(config.store.path))
    astore = AsyncStore(store)
    try:
        sender = Sender(config, astore, now_fn)  # a missing SMTP password is a ConfigError here
    except BaseException:
        await asyncio.to_thread(astore.close)
        raise
    scheduler = AsyncIOScheduler(timezone=config.tz)
    pipeline = Pipeline(
        astore, config=config, rules=rules, now_fn=now_fn, process=process or router.process, wake_sender=sender.wake
    )
    pending: set[asyncio.Future[Any]] = set()
    started = now_fn()

    last_jobs: list[dict[str, str | None]] = []

    def write_status(stopped: datetime | None = None) -> None:
        nonlocal last_jobs
        if scheduler.running:
            last_jobs = _jobs_snapshot(scheduler)
        status = {
            "pid": os.getpid(),
            "started_utc": to_utc_text(started),
            "stopped_utc": to_utc_text(stopped) if stopped else None,
            "jobs": last_jobs,
        }
        task = asyncio.ensure_future(astore.run(Store.set_value, STATUS_KEY, json.dumps(status)))
        pending.add(task)
        task.add_done_callback(pending.discard)

    sender_stop = asyncio.Event()
    web_stop: Callable[[], Awaitable[None]] | None = None
    sender_task: asyncio.Task[None] | None = None
    mailbox_task: asyncio.Task[None] | None = None
    try:
        add_jobs(scheduler, config=config, astore=astore, wake_sender=sender.wake, now_fn=now_fn,
                 mailman_password=mailman_password)
        loop = asyncio.get_running_loop()
        # Job events can come from the executor's threads: write from the loop.
        scheduler.add_listener(
            lambda event: loop.call_soon_threadsafe(write_status), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
        )
        scheduler.start()
        write_status()
        if config.http.port:
            web_stop = await _start_web(config, astore, now_fn)
        sender_task = asyncio.create_task(sender.run(sender_stop), name="listbot-sender")
        mailbox_task = asyncio.create_task(
            mailbox.watch(config.imap, password=password, sink=pipeline, stop=stop, ready=ready),
            name="listbot-mailbox",
        )
        log.info("listbot started: %s as %s, mailbox %s", mailbox.server_name(config.imap),
                 config.imap.username, config.imap.mailbox)
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stopping, mailbox_task, sender_task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not stop.is_set():
            if mailbox_task.done():
                mailbox_task.result()  # a failure at start: raised to the caller
            elif sender_task.done():
                sender_task.result()
    finally:
        stop.set()
        # The mailbox first (a message being processed finishes and may queue a reply), then the sender.
        await _finish(mailbox_task, STOP_MAILBOX_SECONDS)
        sender_stop.set()
        await _finish(sender_task, STOP_SENDER_SECONDS)
        if web_stop is not None:
            await web_stop()
        if scheduler.running:
            last_jobs = _jobs_snapshot(scheduler)
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the next loop turn
        write_status(stopped=now_fn())
        if pending:
            await asyncio.wait(set(pending), timeout=1)
        await asyncio.to_thread(astore.close)
        log.info("listbot stopped")


async def _start_web(
    config: Config, astore: AsyncStore, now_fn: Callable[[], datetime]
) -> Callable[[], Awaitable[None]]:
    """The HTTP endpoint (one-click unsubscribe, the .ics feed); its stop. A taken port names the key."""
    from bot import web

    try:
        _, stop = await web.start(config, astore, now_fn=now_fn)
    except OSError as exc:
        raise ConfigError(
            f"{config.source or '<defaults>'}: [http] port: {config.http.host}:{config.http.port} cannot be served: "
            f"{exc.strerror or exc}"
        ) from None
    return stop


async def _finish(task: asyncio.Task[None] | None, seconds: float) -> None:
    """Wait for a task to end by itself; cancel it after `seconds`. Its own error was logged or raised."""
    if task is None:
        return
    if not task.done():
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if not done:
            log.warning("%s did not stop within %.1f s: cancelled", task.get_name(), seconds)
            task.cancel()
            await asyncio.wait({task}, timeout=1)
    if task.done() and not task.cancelled() and task.exception() is not None:
        log.debug("%s ended with %r", task.get_name(), task.exception())


def _embedded(config: Config) -> tuple[Any, Any]:
    """(banner, start_embedded) of bot.embedded; a ConfigError naming the key when it is not there."""
    try:
        from bot.embedded import banner, start_embedded
    except ImportError:
        raise ConfigError(
            f"{config.source or '<defaults>'}: [embedded] enabled: the embedded servers are not available in this version;"
            " set enabled = false and configure [imap] and [smtp]"
        ) from None
    return banner, start_embedded


def _mailman_password(config: Config) -> str:
    """The Mailman REST password (a ConfigError naming the key when its variable is not set); "" when off."""
    if not config.members.mailman_url:
        return ""
    return config.secret("members", config.members.mailman_password_env, key="mailman_password_env")


def _load_rules() -> Any:
    from bot.rules import RuleError, load_rules

    try:
        return load_rules()
    except RuleError as exc:
        raise ConfigError(str(exc)) from None


# -- the command line ------------------------------------------------------------------------------


def cli_run(args: argparse.Namespace, config: Config) -> int:
    """`listbot run`: the daemon in the foreground until SIGTERM or SIGINT."""
    return asyncio.run(_run(config))


async def _run(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stop_embedded: Callable[[], Awaitable[None]] | None = None
    try:
        if config.embedded.enabled:
            banner, start_embedded = _embedded(config)
            config, stop_embedded = await start_embedded(config)
            print(banner(config), flush=True)
        await serve(config, stop=stop)
    except (mailbox.MailboxError, StoreError) as exc:
        print(f"listbot: {exc}", file=sys.stderr)
        return 2
    finally:
        if stop_embedded is not None:
            await stop_embedded()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


def cli_check_config(args: argparse.Namespace, config: Config) -> int:
    """`listbot check-config FILE`: the file is valid (checked on load); now try both servers (and Mailman)."""
    print(f"{args.config_file}: valid")
    return asyncio.run(_check_servers(config))


async def _check_servers(config: Config) -> int:
    from bot.smtp import check_smtp

    failures = 0
    stop_embedded: Callable[[], Awaitable[None]] | None = None
    try:
        if config.embedded.enabled:
            _, start_embedded = _embedded(config)
            config, stop_embedded = await start_embedded(config)
            print("embedded servers started: trying them")
        try:
            password = config.secret("imap", config.imap.password_env)
            selected = await mailbox.check_imap(config.imap, password)
            print(f"{mailbox.server_name(config.imap)}: logged in as {config.imap.username}, "
                  f"mailbox {config.imap.mailbox} holds {selected.exists} messages")
        except (ConfigError, mailbox.MailboxError) as exc:
            failures += 1
            print(f"listbot: {exc}", file=sys.stderr)
        try:
            await check_smtp(config)
            print(f"SMTP server {config.smtp.host}:{config.smtp.port}: ok")
        except ConfigError as exc:
            failures += 1
            print(f"listbot: {exc}", file=sys.stderr)
        if config.members.mailman_url:
            try:
                found = await asyncio.to_thread(mailman.fetch_members, config, _mailman_password(config))
                print(f"Mailman {mailman.list_url(config)}: {len(found)} addresses on the rosters "
                      f"({', '.join(config.members.mailman_roles)})")
            except (ConfigError, mailman.MailmanError) as exc:
                failures += 1
                print(f"listbot: {exc}", file=sys.stderr)
    finally:
        if stop_embedded is not None:
            await stop_embedded()
    return 2 if failures else 0


def cli_status(args: argparse.Namespace, config: Config) -> int:
    """`listbot status`: last sync, mailbox position, outbox depth and failures, next scheduled jobs."""
    path = config.resolve(config.store.path)
    if str(path) != ":memory:" and not Path(path).exists():
        print(f"store {path}: none yet (the daemon has not run)")
        return 0
    try:
        store = Store.open(path)
    except StoreError as exc:
        print(f"listbot: {exc}", file=sys.stderr)
        return 2
    try:
        for line in status_lines(store, now=_utcnow()):
            print(line)
    finally:
        store.close()
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status_lines(store: Store, *, now: datetime) -> list[str]:
    """What `listbot status` prints (a function of the store and `now`)."""
    lines = [f"store {store.path}"]
    raw = store.get_value(STATUS_KEY)
    status: dict[str, Any] = json.loads(raw) if raw else {}
    if not status:
        lines.append("daemon: has not run")
    elif status.get("stopped_utc"):
        lines.append(f"daemon: stopped at {status['stopped_utc']} (started {status['started_utc']})")
    elif _pid_alive(int(status.get("pid", 0) or 0)):
        lines.append(f"daemon: running since {status['started_utc']} (pid {status['pid']})")
    else:
        lines.append(f"daemon: not running (pid {status.get('pid')} gone; started {status.get('started_utc')})")
    states = store.mailbox_states()
    if not states:
        lines.append("mailbox: never synced")
    for s in states:
        lines.append(
            f"mailbox {s['mailbox']}: last sync {s['last_sync_utc']}, UIDVALIDITY {s['uidvalidity']}, last UID {s['last_uid']}"
        )
    counts = store.outbox_counts()
    next_due = store.next_send_after()
    due = ""
    if next_due is not None:
        due = " (next due now)" if next_due <= now else f" (next due {to_utc_text(next_due)})"
    lines.append(
        f"outbox: {counts.get('queued', 0)} queued{due}, {counts.get('sent', 0)} sent, {counts.get('failed', 0)} failed"
    )
    for mail in store.failed_mail(limit=5):
        lines.append(f"  failed mail to {mail.recipient} {mail.message_id}: {mail.last_error}")
    lines.extend(mailman.status_lines(store))
    failures = store.failures(limit=5)
    lines.append(f"messages that failed: {len(failures)}{'+' if len(failures) == 5 else ''}")
    for f in failures:
        lines.append(f"  {f['message_id']} at {f['processed_utc']}: {f['error']}")
    jobs = status.get("jobs") or []
    if not status:
        lines.append("next jobs: (the daemon has not run)")
    elif not jobs:
        lines.append("next jobs: none scheduled")
    else:
        # When the daemon is down these are the times it had planned (a missed digest is caught up at start).
        planned = " (planned when it last ran)" if status.get("stopped_utc") else ""
        for job in jobs:
            when = job.get("next_utc")
            label = "paused" if not when else from_utc_text(when).isoformat(timespec="minutes")
            lines.append(f"next job {job['name']}: {label}{planned}")
    return lines
