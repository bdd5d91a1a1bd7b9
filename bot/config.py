"""Configuration: a TOML file loaded into frozen dataclasses, every key checked."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.paths import data_dir


class ConfigError(Exception):
    """A configuration problem, said in one line that names the file and the key."""


@dataclass(frozen=True)
class ListSection:
    address: str = "wg@lists.example.org"
    name: str = "Working Group"
    # The List-Id header value (without angle brackets) that marks a post to the list; empty: To/Cc only.
    id: str = ""
    timezone: str = "UTC"


@dataclass(frozen=True)
class BotSection:
    address: str = "listbot@example.org"
    name: str = "listbot"
    # Bodies larger than this are truncated (and flagged) before they are read.
    max_body_bytes: int = 1_000_000
    # At most this many command lines are read from one mail.
    max_command_lines: int = 20


@dataclass(frozen=True)
class EmbeddedSection:
    # true: `listbot run` starts a loopback-only SMTP + IMAP server inside the process and uses it.
    enabled: bool = True
    smtp_port: int = 2525
    imap_port: int = 1143
    # Where mail the bot sends lands (an mbox file).
    outgoing: str = "listbot-outgoing.mbox"


@dataclass(frozen=True)
class ImapSection:
    host: str = "127.0.0.1"
    port: int = 993
    username: str = "listbot"
    # The name of the environment variable that holds the password (never the password itself).
    password_env: str = "LISTBOT_IMAP_PASSWORD"
    security: str = "ssl"
    mailbox: str = "INBOX"
    # IDLE is re-issued at least this often (seconds); servers drop long IDLEs.
    idle_seconds: int = 240
    # Every IMAP command is given up after this many seconds.
    timeout_seconds: int = 60
    # Reconnect backoff: first delay and cap (seconds), with jitter.
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    # UIDs fetched per FETCH command (aioimaplib's parser fails at >= 1000 items).
    fetch_batch: int = 100
    # Folder that a message whose processing fails is moved to; empty: leave it where it is.
    quarantine: str = ""
    # Mark processed messages \Seen.
    mark_seen: bool = False


@dataclass(frozen=True)
class SmtpSection:
    host: str = "127.0.0.1"
    port: int = 587
    username: str = ""
    password_env: str = "LISTBOT_SMTP_PASSWORD"
    security: str = "starttls"
    timeout_seconds: int = 60
    # Transient failures (4xx, connection errors) are retried for this long (hours).
    retry_hours: float = 48.0
    # Retry backoff for a mail (and for reconnecting): first delay and cap in seconds, doubling.
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0


@dataclass(frozen=True)
class StoreSection:
    path: str = "listbot.sqlite3"


@dataclass(frozen=True)
class MembersSection:
    # A file of member addresses, one a line; empty: nobody but the moderators (and Mailman's roster).
    roster: str = ""
    moderators: tuple[str, ...] = ()
    # The authserv-id of the receiving server whose Authentication-Results header is trusted.
    authserv_id: str = ""
    # "once-a-day": a non-member gets one short refusal a day; "never": nothing.
    nonmember_reply: str = "once-a-day"
    # Replies per sender per hour, and for everyone together.
    rate_per_hour: int = 20
    global_rate_per_hour: int = 500
    # Mailman 3's core REST API (like "http://localhost:8001/3.1"); empty: off. Its roster counts too.
    mailman_url: str = ""
    # The list's Mailman list id ("wg.lists.example.org"); empty: [list] address with "." for "@".
    mailman_list: str = ""
    # Which Mailman rosters count as members (moderator powers come only from `moderators`).
    mailman_roles: tuple[str, ...] = ("member", "moderator", "owner")
    mailman_username: str = "restadmin"
    mailman_password_env: str = "LISTBOT_MAILMAN_PASSWORD"
    # How often (seconds) the roster is read again; after a failure the last good one is kept.
    mailman_refresh_seconds: int = 600


@dataclass(frozen=True)
class RemindersSection:
    # Send deadline and meeting reminders to the list (only for items not flagged uncertain).
    to_list: bool = True
    deadline_offsets: tuple[str, ...] = ("7d", "1d")
    # Local time (list time zone) at which day-offset deadline reminders go out.
    deadline_time: str = "09:00"
    meeting_offsets: tuple[str, ...] = ("1d", "1h")
    # Zones in which meeting times are shown, besides UTC and the member's own.
    zones: tuple[str, ...] = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Africa/Nairobi")
    # How often (seconds) the daemon asks the store what is due.
    tick_seconds: int = 60


@dataclass(frozen=True)
class DigestSection:
    # Crontab fields (minute hour day month day-of-week) in the list's time zone.
    cron: str = "0 8 * * mon"
    to_list: bool = True
    days_ahead: int = 30
    # Send nothing when there is nothing to say.
    skip_empty: bool = True


@dataclass(frozen=True)
class HttpSection:
    # Port of the small HTTP endpoint (one-click unsubscribe, .ics feed); 0: off.
    port: int = 0
    host: str = "127.0.0.1"
    # The address members' mail clients reach it at (for List-Unsubscribe links).
    public_url: str = "http://127.0.0.1:8025"


@dataclass(frozen=True)
class Config:
    list: ListSection = field(default_factory=ListSection)
    bot: BotSection = field(default_factory=BotSection)
    embedded: EmbeddedSection = field(default_factory=EmbeddedSection)
    imap: ImapSection = field(default_factory=ImapSection)
    smtp: SmtpSection = field(default_factory=SmtpSection)
    store: StoreSection = field(default_factory=StoreSection)
    members: MembersSection = field(default_factory=MembersSection)
    reminders: RemindersSection = field(default_factory=RemindersSection)
    digest: DigestSection = field(default_factory=DigestSection)
    http: HttpSection = field(default_factory=HttpSection)
    # The file this was read from (None: built-in defaults); relative paths in it are read from its folder.
    source: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.list.timezone)

    def resolve(self, path: str) -> Path:
        """A path from the config: relative ones are relative to the current directory."""
        return Path(path).expanduser()

    def secret(self, section: str, env_name: str, key: str = "password_env") -> str:
        """The secret named by an environment variable; missing is a ConfigError naming the key."""
        if not env_name:
            return ""
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(
                f"{self.source or '<defaults>'}: [{section}] {key}: environment variable {env_name} is not set"
            )
        return value


_SECURITY = ("ssl", "starttls", "none")
_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("imap", "security"): _SECURITY,
    ("smtp", "security"): _SECURITY,
    ("members", "nonmember_reply"): ("once-a-day", "never"),
}
# The Mailman 3 rosters that may be read as members (never "nonmember": those are only known posters).
MAILMAN_ROLES = ("member", "moderator", "owner")


def example_path() -> Path:
    return data_dir("config") / "example.toml"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read `path` (None: the built-in defaults, which are those of config/example.toml)."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return from_dict(raw, str(p))


def from_dict(raw: dict[str, typing.Any], source: str = "<config>") -> Config:
    hints = typing.get_type_hints(Config)
    sections: dict[str, typing.Any] = {}
    for name, value in raw.items():
        if name not in hints or name == "source":
            known = ", ".join(f.name for f in dataclasses.fields(Config) if f.name != "source")
            raise ConfigError(f"{source}: [{name}]: unknown section (known: {known})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {name}: must be a table [{name}]")
        sections[name] = _section(hints[name], name, value, source)
    config = Config(**sections, source=source)
    _check(config, source)
    return config


def _section(cls: type, section: str, values: dict[str, typing.Any], source: str) -> typing.Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, typing.Any] = {}
    for key, value in values.items():
        where = f"{source}: [{section}] {key}"
        if key not in hints:
            known = ", ".join(hints)
            raise ConfigError(f"{where}: unknown key (known in [{section}]: {known})")
        kwargs[key] = _coerce(hints[key], value, where)
        choices = _CHOICES.get((section, key))
        if choices and kwargs[key] not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(repr(c) for c in choices)}, not {value!r}")
    return cls(**kwargs)


def _coerce(hint: typing.Any, value: typing.Any, where: str) -> typing.Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: must be a list of strings, not {value!r}")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise ConfigError(f"{where}: must be {_type_name(hint)}, not {type(value).__name__} {value!r}")
    return value


def _type_name(hint: typing.Any) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(
        hint, str(hint)
    )


def _check(config: Config, source: str) -> None:
    """Checks that span a key's meaning, not just its type."""
    try:
        ZoneInfo(config.list.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{source}: [list] timezone: unknown time zone {config.list.timezone!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    for zone in config.reminders.zones:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{source}: [reminders] zones: unknown time zone {zone!r}") from None
    for section, key in (("imap", "port"), ("smtp", "port"), ("embedded", "smtp_port"), ("embedded", "imap_port")):
        port = getattr(getattr(config, section), key)
        if not 0 < port < 65536:
            raise ConfigError(f"{source}: [{section}] {key}: must be a port number from 1 to 65535, not {port}")
    if not 0 <= config.http.port < 65536:
        raise ConfigError(f"{source}: [http] port: must be 0 (off) or a port number, not {config.http.port}")
    for section, key in (("list", "address"), ("bot", "address")):
        value = getattr(getattr(config, section), key)
        if "@" not in value:
            raise ConfigError(f"{source}: [{section}] {key}: must be an email address, not {value!r}")
    positive = (
        ("bot", "max_body_bytes"),
        ("bot", "max_command_lines"),
        ("imap", "idle_seconds"),
        ("imap", "timeout_seconds"),
        ("imap", "fetch_batch"),
        ("smtp", "timeout_seconds"),
        ("members", "rate_per_hour"),
        ("members", "global_rate_per_hour"),
        ("members", "mailman_refresh_seconds"),
        ("reminders", "tick_seconds"),
        ("digest", "days_ahead"),
    )
    for section, key in positive:
        if getattr(getattr(config, section), key) <= 0:
            raise ConfigError(f"{source}: [{section}] {key}: must be greater than 0")
    if not config.imap.fetch_batch < 1000:
        raise ConfigError(f"{source}: [imap] fetch_batch: must be below 1000 (aioimaplib cannot parse more)")
    if not config.store.path:
        raise ConfigError(f"{source}: [store] path: must not be empty")
    _check_mailman(config, source)
    _check_schedule(config, source)


def _check_mailman(config: Config, source: str) -> None:
    """The Mailman REST URL (no credentials in it: they would end up in logs), the list id and the roles."""
    import re
    import urllib.parse

    m = config.members
    if m.mailman_url:
        where = f"{source}: [members] mailman_url"
        try:
            url = urllib.parse.urlsplit(m.mailman_url)
            _ = url.port  # raises ValueError for a port that is not a number from 0 to 65535
        except ValueError:
            url = urllib.parse.urlsplit("")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(
                f'{where}: must be an http:// or https:// URL like "http://localhost:8001/3.1", or empty (off), '
                f"not {m.mailman_url!r}"
            )
        if url.username is not None or url.password is not None:
            raise ConfigError(f"{where}: must not hold a user or password (use mailman_username and mailman_password_env)")
        if url.query or url.fragment:
            raise ConfigError(f"{where}: must not have a query or fragment, not {m.mailman_url!r}")
    if m.mailman_list and not re.fullmatch(r"[^\s/@?#%]+\.[^\s/@?#%]+", m.mailman_list):
        raise ConfigError(
            f'{source}: [members] mailman_list: must be a Mailman list id like "wg.lists.example.org" (the list\'s '
            f'address with "." for "@"), or empty, not {m.mailman_list!r}'
        )
    if not m.mailman_roles:
        raise ConfigError(f"{source}: [members] mailman_roles: must name at least one of {', '.join(MAILMAN_ROLES)}")
    for role in m.mailman_roles:
        if role not in MAILMAN_ROLES:
            raise ConfigError(
                f"{source}: [members] mailman_roles: {role!r} is not one of {', '.join(repr(r) for r in MAILMAN_ROLES)}"
            )


def _check_schedule(config: Config, source: str) -> None:
    """Reminder offsets ("7d", "12h", "30m"), the deadline time ("09:00") and the digest's crontab."""
    import re
    from datetime import time as _time

    for key in ("deadline_offsets", "meeting_offsets"):
        for offset in getattr(config.reminders, key):
            if not re.fullmatch(r"\d{1,4}[dhm]", offset):
                raise ConfigError(
                    f"{source}: [reminders] {key}: {offset!r} is not an offset like \"7d\", \"12h\" or \"30m\""
                )
    try:
        _time.fromisoformat(config.reminders.deadline_time)
    except ValueError:
        raise ConfigError(
            f"{source}: [reminders] deadline_time: {config.reminders.deadline_time!r} is not a time like \"09:00\""
        ) from None
    from apscheduler.triggers.cron import CronTrigger  # the digest job's own grammar

    try:
        CronTrigger.from_crontab(config.digest.cron, timezone=ZoneInfo(config.list.timezone))
    except ValueError as exc:
        raise ConfigError(
            f"{source}: [digest] cron: {config.digest.cron!r} is not a crontab (minute hour day month weekday): {exc}"
        ) from None
