"""Mailman 3's core REST API: the list's roster, read as members, and the last good copy of it in the store."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from bot.config import Config
from bot.store import AsyncStore, Store, to_utc_text

log = logging.getLogger(__name__)

# Entries asked for per page (Mailman pages with ?count=&page=, the first page is 1).
PAGE_SIZE = 200
# Each request is given up after this many seconds (a daemon stopping waits for one at most this long).
TIMEOUT_SECONDS = 10.0
# An answer larger than this is refused: a roster page is a few hundred kilobytes at most.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# The store keys: the last roster read (with where from and when), and the last failure since then.
ROSTER_KEY = "mailman.roster"
ERROR_KEY = "mailman.error"


class MailmanError(Exception):
    """Mailman's roster could not be read: one line naming the URL and the HTTP status or the error."""


def list_id(config: Config) -> str:
    """[members] mailman_list, or the list id Mailman gives the [list] address ("wg@x.org" -> "wg.x.org")."""
    return config.members.mailman_list or config.list.address.lower().replace("@", ".", 1)


def list_url(config: Config) -> str:
    """The list's resource: {mailman_url}/lists/{list id}."""
    base = config.members.mailman_url.rstrip("/")
    return f"{base}/lists/{urllib.parse.quote(list_id(config), safe='')}"


def source(config: Config) -> str:
    """What a stored roster was read from; a roster read with other settings does not count."""
    return f"{list_url(config)} {','.join(config.members.mailman_roles)}"


def fetch_members(config: Config, password: str, *, page_size: int = PAGE_SIZE) -> frozenset[str]:
    """Every address on the configured rosters (lower-case), page by page; blocking (run it in a thread).

    Any failure on any page raises MailmanError: a roster is taken whole or not at all."""
    headers = {"Accept": "application/json", "User-Agent": "listbot"}
    if config.members.mailman_username:
        token = f"{config.members.mailman_username}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
    addresses: set[str] = set()
    for role in config.members.mailman_roles:
        url = f"{list_url(config)}/roster/{role}"
        seen = 0
        page = 1
        while True:
            data = _get_json(f"{url}?count={page_size}&page={page}", url, headers, config)
            total = data.get("total_size")
            # Mailman leaves "entries" out of an empty page.
            entries = data.get("entries", [])
            if not isinstance(total, int) or isinstance(total, bool) or not isinstance(entries, list):
                raise MailmanError(f"Mailman {url}: the answer is not a roster (no total_size and entries)")
            for entry in entries:
                address = _address(entry)
                if address is None:
                    raise MailmanError(f"Mailman {url}: a roster entry has no email: {str(entry)[:200]}")
                addresses.add(address)
            seen += len(entries)
            if not entries or seen >= total:
                break
            page += 1
            if page > total // page_size + 2:  # a server that ignores `page` would repeat page 1 forever
                raise MailmanError(f"Mailman {url}: paging does not end (page {page} of {total} entries)")
    return frozenset(addresses)


def _address(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    email = entry.get("email")
    if not isinstance(email, str):
        # Older answers only link the address: ".../addresses/anne@example.org".
        link = entry.get("address")
        email = urllib.parse.unquote(link.rpartition("/addresses/")[2]) if isinstance(link, str) else None
    if not email or "@" not in email:
        return None
    return email.strip().lower()


def _get_json(url: str, where: str, headers: dict[str, str], config: Config) -> dict[str, Any]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            body = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise MailmanError(f"Mailman {where}: HTTP {exc.code} {exc.reason}{_hint(exc.code, config)}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise MailmanError(f"Mailman {where}: no answer within {TIMEOUT_SECONDS:g} s") from None
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        raise MailmanError(f"Mailman {where}: cannot connect: {text}") from None
    except TimeoutError:
        raise MailmanError(f"Mailman {where}: no answer within {TIMEOUT_SECONDS:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise MailmanError(f"Mailman {where}: {type(exc).__name__}: {exc}") from None
    if len(body) > MAX_ANSWER_BYTES:
        raise MailmanError(f"Mailman {where}: the answer is larger than {MAX_ANSWER_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MailmanError(f"Mailman {where}: the answer is not JSON (is mailman_url the REST API?)") from None
    if not isinstance(data, dict):
        raise MailmanError(f"Mailman {where}: the answer is not a roster (not a JSON object)")
    return data


def _hint(status: int, config: Config) -> str:
    if status in (401, 403):
        return (f" (check [members] mailman_username and the password in ${config.members.mailman_password_env})")
    if status == 404:
        return f" (is there a list {list_id(config)!r}? check [members] mailman_list and mailman_url)"
    return ""


# -- the last good roster, kept in the store (on the store's thread) ------------------------------


# The parsed roster per store file, with the text and the source it was parsed from (None: none that counts).
_parsed: dict[str, tuple[str, str, frozenset[str] | None]] = {}


def members(store: Store, config: Config) -> frozenset[str]:
    """The addresses of the last roster read with the current settings (empty: off, or never read).

    A roster read from another URL, list or roles does not count: the settings changed since."""
    return _kept(store, config) or frozenset()


def _kept(store: Store, config: Config) -> frozenset[str] | None:
    if not config.members.mailman_url:
        return None
    raw = store.get_value(ROSTER_KEY) or ""
    wanted = source(config)
    cached = _parsed.get(str(store.path))
    if cached and cached[0] == raw and cached[1] == wanted:
        return cached[2]
    addresses: frozenset[str] | None = None
    try:
        data = json.loads(raw) if raw else {}
        if isinstance(data, dict) and data.get("source") == wanted:
            addresses = frozenset(str(a).lower() for a in data["addresses"])
    except (ValueError, KeyError, TypeError):
        log.warning("the stored Mailman roster cannot be read: ignored until the next refresh")
    _parsed[str(store.path)] = (raw, wanted, addresses)
    return addresses


def save(store: Store, config: Config, addresses: frozenset[str], now: datetime) -> None:
    data = {"source": source(config), "fetched_utc": to_utc_text(now), "addresses": sorted(addresses)}
    with store.transaction():
        store.set_value(ROSTER_KEY, json.dumps(data))
        store.set_value(ERROR_KEY, "")


def record_error(store: Store, config: Config, error: str, now: datetime) -> int | None:
    """Note the failure (for `listbot status`); returns the size of the roster kept (None: none read yet)."""
    store.set_value(ERROR_KEY, json.dumps({"at_utc": to_utc_text(now), "error": error}))
    kept = _kept(store, config)
    return None if kept is None else len(kept)


def status_lines(store: Store) -> list[str]:
    """What `listbot status` says about Mailman (nothing when it was never read)."""
    lines = []
    for key, say in (
        (ROSTER_KEY, lambda d: f"mailman: {len(d['addresses'])} addresses from {d['source']}, read {d['fetched_utc']}"),
        (ERROR_KEY, lambda d: f"mailman: last try at {d['at_utc']} failed: {d['error']}"),
    ):
        raw = store.get_value(key)
        if raw:
            try:
                lines.append(say(json.loads(raw)))
            except (ValueError, KeyError, TypeError):
                pass
    return lines


async def refresh(astore: AsyncStore, config: Config, *, password: str, now: datetime) -> bool:
    """Read the roster again and keep it; on failure log one line and keep the last good one. True: read."""
    try:
        addresses = await asyncio.to_thread(fetch_members, config, password)
    except MailmanError as exc:
        kept = await astore.run(record_error, config, str(exc), now)
        if kept is None:
            log.error("%s; no roster read from it yet: only the roster file and the moderators are members; "
                      "next try in %d s", exc, config.members.mailman_refresh_seconds)
        else:
            log.error("%s; keeping the last roster read (%d addresses), next try in %d s",
                      exc, kept, config.members.mailman_refresh_seconds)
        return False
    await astore.run(save, config, addresses, now)
    if not addresses:
        log.warning("Mailman roster of %s is empty (%s): only the roster file and the moderators are members",
                    list_id(config), ", ".join(config.members.mailman_roles))
        return True
    log.info("Mailman roster of %s: %d addresses (%s)", list_id(config), len(addresses),
             ", ".join(config.members.mailman_roles))
    return True
