"""Who may use the bot: the roster file (and Mailman's), the moderators, and proof that a moderator sent a mail."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from bot.config import Config

log = logging.getLogger(__name__)

TOKEN_HOURS = 48

_cache: dict[str, tuple[float, int, frozenset[str]]] = {}


def load_roster(path: str | Path) -> frozenset[str]:
    """The addresses in a roster file, one a line, lower-case; '#' starts a comment; re-read when it changes.

    A roster that cannot be read counts as empty (logged): nobody but the moderators is a member then,
    which refuses too many rather than too few."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError as exc:
        log.warning("members roster %s cannot be read: %s", p, exc)
        return frozenset()
    key = str(p)
    cached = _cache.get(key)
    if cached and cached[0] == st.st_mtime and cached[1] == st.st_size:
        return cached[2]
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        log.warning("members roster %s cannot be read: %s", p, exc)
        return frozenset()
    addresses = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.search(r"<([^<>@\s]+@[^<>\s]+)>", line)
        address = m.group(1) if m else line
        if "@" in address and " " not in address:
            addresses.add(address.lower())
    roster = frozenset(addresses)
    _cache[key] = (st.st_mtime, st.st_size, roster)
    return roster


def is_moderator(address: str, config: Config) -> bool:
    return address.lower() in {m.strip().lower() for m in config.members.moderators}


def is_member(address: str, config: Config, mailman: frozenset[str] = frozenset()) -> bool:
    """A member is on the roster file or on Mailman's roster, or a moderator; with the embedded servers,
    no roster file and no Mailman, anyone.

    `mailman` is the last Mailman roster read (bot.mailman.members), lower-case. A Mailman that never
    answered adds nobody: it never makes everybody a member."""
    address = address.lower()
    if is_moderator(address, config):
        return True
    if not config.members.roster and not config.members.mailman_url:
        # The embedded servers listen on loopback only: whoever reaches them is trying the bot out.
        return config.embedded.enabled
    if address in mailman:
        return True
    return bool(config.members.roster) and address in load_roster(config.resolve(config.members.roster))


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _aligned(domain: str, sender_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 3.1): the same domain or a subdomain of the sender's (or the reverse)."""
    return domain == sender_domain or domain.endswith("." + sender_domain) or sender_domain.endswith("." + domain)


def authenticated(auth_results: str, *, sender: str, authserv_id: str) -> bool:
    """True when the trusted server's Authentication-Results (RFC 8601) says DMARC passed for the From domain,
    or DKIM passed with a signing domain aligned with it.

    Only a header whose authserv-id is the configured one counts: anyone can write an Authentication-Results
    header, but the trusted receiving server removes or overrides those claiming its own id. With no
    authserv_id configured nothing is trusted (moderators confirm by token instead)."""
    if not authserv_id or not auth_results or "@" not in sender:
        return False
    serv, _, rest = auth_results.partition(";")
    # "mx.example.org 1" (a version number may follow the id)
    if not serv.split() or serv.split()[0].strip().lower() != authserv_id.strip().lower():
        return False
    sender_domain = _domain(sender)
    for clause in rest.split(";"):
        clause = re.sub(r"\([^()]*\)", " ", clause).strip().lower()
        m = re.match(r"(dmarc|dkim)\s*=\s*(\w+)", clause)
        if not m or m.group(2) != "pass":
            continue
        props = dict(re.findall(r"([a-z]+\.[a-z-]+)\s*=\s*\"?([^\s\";]+)", clause))
        if m.group(1) == "dmarc":
            domain = props.get("header.from", "")
            if domain and _aligned(domain.lstrip("@"), sender_domain):
                return True
        else:
            domain = props.get("header.d", "") or _domain(props.get("header.i", ""))
            if domain and _aligned(domain, sender_domain):
                return True
    return False


def new_token() -> str:
    """A single-use confirmation token: 128 bits from `secrets`, safe in a Subject line."""
    return secrets.token_urlsafe(16)


def token_expiry(now: datetime) -> datetime:
    return now + timedelta(hours=TOKEN_HOURS)
