"""Members from Mailman 3's REST API: paging, basic auth, the last good roster kept, union with the roster file."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dovecot import free_port
from test_daemon import write_config
from test_handler import Bot, text_of

from bot import app, cli, mailman
from bot.config import Config, ConfigError, from_dict, load_config
from bot.jobs import add_jobs
from bot.members import is_member
from bot.store import AsyncStore, Store

NOW = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
LIST_ID = "wg.lists.example.org"
USER = "restadmin"
PASSWORD = "mailman-s3cret"
PASSWORD_ENV = "LISTBOT_TEST_MAILMAN_PASSWORD"
MEMBERS = ["Anna@Example.org", "bob@example.org", "carla@example.net", "dan@example.com", "eve@example.org"]
MODERATORS = ["Mod@Example.net"]


class FakeMailman:
    """A stand-in for Mailman 3's core REST API on 127.0.0.1: GET /3.1/lists/<id>/roster/<role>?count=&page=,
    HTTP basic auth, entries left out of an empty page (as Mailman does); `fail` forces an HTTP status."""

    def __init__(self, rosters: dict[str, list[str]]) -> None:
        self.rosters = rosters
        self.requests: list[str] = []
        self.fail: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self.answer(401, {"title": "401 Unauthorized", "description": "REST API authorization failed"})
                if fake.fail:
                    return self.answer(fake.fail, {"title": "Server error"})
                url = urllib.parse.urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) != 5 or parts[:2] != ["3.1", "lists"] or parts[3] != "roster" or parts[2] != LIST_ID:
                    return self.answer(404, {"title": "404 Not Found"})
                roster = fake.rosters.get(parts[4], [])
                query = urllib.parse.parse_qs(url.query)
                count = int(query.get("count", [len(roster) or 1])[0])
                page = int(query.get("page", ["1"])[0])
                start = (page - 1) * count
                entries = [
                    {"address": f"http://localhost:8001/3.1/addresses/{a}", "email": a, "role": parts[4],
                     "list_id": LIST_ID, "member_id": f"{i:032x}", "delivery_mode": "regular",
                     "self_link": f"http://localhost:8001/3.1/members/{i:032x}", "http_etag": '"x"'}
                    for i, a in enumerate(roster[start : start + count], start)
                ]
                data: dict[str, Any] = {"start": start, "total_size": len(roster), "http_etag": '"y"'}
                if entries:
                    data["entries"] = entries
                return self.answer(200, data)

            def answer(self, status: int, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/3.1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="fake-mailman", daemon=True)
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMailman]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    server = FakeMailman({"member": list(MEMBERS), "moderator": list(MODERATORS), "owner": []})
    try:
        yield server
    finally:
        server.stop()


def members_section(fake: FakeMailman, **overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {"mailman_url": fake.url, "mailman_username": USER, "mailman_password_env": PASSWORD_ENV}
    section.update(overrides)
    return section


def make_config(fake: FakeMailman, **members: Any) -> Config:
    return from_dict({"list": {"address": "WG@lists.example.org"}, "members": members_section(fake, **members)})


@pytest.fixture
async def astore(tmp_path: Path) -> Any:
    s = AsyncStore(Store.open(tmp_path / "store.sqlite3"))
    yield s
    await asyncio.to_thread(s.close)


def test_members_are_read_across_pages(fake: FakeMailman):
    # Every page of every roster is read (lower-case); an empty roster, which Mailman answers without entries, adds nobody.
    config = make_config(fake)
    found = mailman.fetch_members(config, PASSWORD, page_size=2)
    assert found == {a.lower() for a in MEMBERS + MODERATORS}
    base = f"/3.1/lists/{LIST_ID}/roster"
    assert fake.requests == [
        f"{base}/member?count=2&page=1", f"{base}/member?count=2&page=2", f"{base}/member?count=2&page=3",
        f"{base}/moderator?count=2&page=1", f"{base}/owner?count=2&page=1",
    ]
    only_members = make_config(fake, mailman_roles=["member"])
    assert mailman.fetch_members(only_members, PASSWORD) == {a.lower() for a in MEMBERS}


FAILURES = [
    ("wrong password", "HTTP 401 Unauthorized (check [members] mailman_username and the password in "
     f"${PASSWORD_ENV})"),
    ("server down", "cannot connect: Connection refused"),
    ("server error", "HTTP 500 Internal Server Error"),
    ("no such list", "HTTP 404 Not Found (is there a list 'other.lists.example.org'?"),
]


@pytest.mark.parametrize(("failure", "expected"), FAILURES)
async def test_a_failure_is_one_line_and_the_last_roster_is_kept(
    fake: FakeMailman, astore: AsyncStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    failure: str, expected: str,
):
    # Mailman refusing or down: one ERROR line naming the URL and the status or error (never the password),
    # the last good roster stays (not nobody, not everybody), and the next refresh reads it again.
    config = make_config(fake)
    assert await mailman.refresh(astore, config, password=PASSWORD, now=NOW)
    before = await astore.run(mailman.members, config)
    assert "anna@example.org" in before and len(before) == 6

    password = PASSWORD
    if failure == "wrong password":
        password = "wrong-password"
    elif failure == "server down":
        fake.stop()
    elif failure == "server error":
        fake.fail = 500
    elif failure == "no such list":
        # Another list id: its roster does not count, and the one read before stays in the store.
        config = make_config(fake, mailman_list="other.lists.example.org")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot.mailman"):
        assert not await mailman.refresh(astore, config, password=password, now=NOW + timedelta(minutes=10))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, errors
    listed = config.members.mailman_list or LIST_ID
    assert f"Mailman {fake.url}/lists/{listed}/roster/member: {expected}" in errors[0]
    if failure == "no such list":
        assert "no roster read from it yet" in errors[0]  # the roster read for the other list is not this one's
    else:
        assert "keeping the last roster read (6 addresses), next try in 600 s" in errors[0]
    assert "\n" not in errors[0] and password not in errors[0]

    kept = make_config(fake)
    assert await astore.run(mailman.members, kept) == before
    store = astore.store
    assert is_member("Anna@example.ORG", kept, mailman.members(store, kept))
    assert not is_member("stranger@evil.example", kept, mailman.members(store, kept))
    status = app.status_lines(store, now=NOW + timedelta(minutes=11))
    assert f"mailman: 6 addresses from {fake.url}/lists/{LIST_ID} member,moderator,owner, read 2026-09-01T10:00" in "\n".join(status)
    assert any(line.startswith("mailman: last try at 2026-09-01T10:10") and expected in line for line in status)

    if failure == "server error":
        # The next refresh after Mailman is back reads the new roster and clears the failure.
        fake.fail = None
        fake.rosters["member"].append("new@example.org")
        assert await mailman.refresh(astore, kept, password=PASSWORD, now=NOW + timedelta(minutes=20))
        assert "new@example.org" in await astore.run(mailman.members, kept)
        assert not any("last try" in line for line in app.status_lines(store, now=NOW + timedelta(minutes=21)))


async def test_a_mailman_never_read_adds_nobody_and_never_everybody(
    fake: FakeMailman, astore: AsyncStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # With the embedded servers and no roster file, anyone may try the bot - but not once mailman_url is set,
    # even while Mailman has never answered: then only the moderators (and the roster file) count.
    fake.stop()
    config = from_dict({"embedded": {"enabled": True}, "members": members_section(fake, moderators=["mod@example.net"])})
    with caplog.at_level(logging.INFO, logger="bot.mailman"):
        assert not await mailman.refresh(astore, config, password=PASSWORD, now=NOW)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"Mailman {fake.url}/lists/{LIST_ID}/roster/member: cannot connect: Connection refused; no roster read "
        "from it yet: only the roster file and the moderators are members; next try in 600 s"
    ]
    assert await astore.run(mailman.members, config) == frozenset()
    assert not is_member("anna@example.org", config, frozenset())
    assert is_member("Mod@example.net", config, frozenset())
    roster = tmp_path / "roster.txt"
    roster.write_text("file@example.org\n")
    with_file = from_dict({"members": members_section(fake, roster=str(roster))})
    assert is_member("FILE@example.org", with_file, frozenset())


async def test_roster_file_and_mailman_together(fake: FakeMailman, astore: AsyncStore, tmp_path: Path):
    # Members are the roster file's addresses and Mailman's, compared without regard to case.
    roster = tmp_path / "roster.txt"
    roster.write_text("# local\nZoe <Zoe@Example.org>\n")
    config = make_config(fake, roster=str(roster))
    assert await mailman.refresh(astore, config, password=PASSWORD, now=NOW)
    known = await astore.run(mailman.members, config)
    for address in ("zoe@example.org", "ZOE@EXAMPLE.ORG", "anna@example.org", "ANNA@example.ORG", "mod@example.net"):
        assert is_member(address, config, known), address
    assert not is_member("stranger@evil.example", config, known)
    # Mailman's moderators are members, not moderators: those powers come only from [members] moderators.
    from bot.members import is_moderator

    assert not is_moderator("mod@example.net", config)


async def test_a_roster_read_with_other_settings_does_not_count(fake: FakeMailman, astore: AsyncStore):
    # A roster read for another list or other roles is not used, and with mailman_url off none is.
    config = make_config(fake)
    assert await mailman.refresh(astore, config, password=PASSWORD, now=NOW)
    assert await astore.run(mailman.members, config)
    for other in (make_config(fake, mailman_list="other.lists.example.org"), make_config(fake, mailman_roles=["owner"]),
                  make_config(fake, mailman_url="")):
        assert await astore.run(mailman.members, other) == frozenset()


BAD = [
    ({"mailman_url": "localhost:8001/3.1"}, "[members] mailman_url: must be an http:// or https:// URL"),
    ({"mailman_url": "ftp://localhost/3.1"}, "[members] mailman_url: must be an http:// or https:// URL"),
    ({"mailman_url": "http://localhost:99999/3.1"}, "[members] mailman_url: must be an http:// or https:// URL"),
    ({"mailman_url": "http://restadmin:pw@localhost:8001/3.1"}, "[members] mailman_url: must not hold a user or password"),
    ({"mailman_url": "http://localhost:8001/3.1?x=1"}, "[members] mailman_url: must not have a query"),
    ({"mailman_url": 8001}, "[members] mailman_url: must be a string"),
    ({"mailman_list": "wg@lists.example.org"}, "[members] mailman_list: must be a Mailman list id"),
    ({"mailman_list": "wg/lists"}, "[members] mailman_list: must be a Mailman list id"),
    ({"mailman_roles": ["member", "nonmember"]}, "[members] mailman_roles: 'nonmember' is not one of"),
    ({"mailman_roles": []}, "[members] mailman_roles: must name at least one of"),
    ({"mailman_roles": "member"}, "[members] mailman_roles: must be a list of strings"),
    ({"mailman_refresh_seconds": 0}, "[members] mailman_refresh_seconds: must be greater than 0"),
    ({"mailman_refresh_seconds": "600"}, "[members] mailman_refresh_seconds: must be a whole number"),
    ({"mailman_password": "x"}, "[members] mailman_password: unknown key"),
]


@pytest.mark.parametrize(("members", "expected"), BAD)
def test_bad_mailman_settings_name_the_key(tmp_path: Path, members: dict[str, Any], expected: str):
    # A bad Mailman setting is one ConfigError line naming the file and the key.
    path = write_config(tmp_path / "bad.toml", {"members": members})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and expected in str(info.value) and "\n" not in str(info.value)


def test_a_missing_password_variable_names_the_key(fake: FakeMailman, monkeypatch: pytest.MonkeyPatch):
    # The daemon reads the REST password at start; an unset variable names [members] mailman_password_env.
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(ConfigError, match=rf"\[members\] mailman_password_env: environment variable {PASSWORD_ENV} is not set"):
        app._mailman_password(make_config(fake))
    assert app._mailman_password(make_config(fake, mailman_url="")) == ""


async def test_the_daemon_refreshes_the_roster_on_a_timer(fake: FakeMailman, astore: AsyncStore):
    # With mailman_url set, add_jobs adds the refresh every mailman_refresh_seconds, first at once.
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    config = make_config(fake, mailman_refresh_seconds=300)
    scheduler = AsyncIOScheduler(timezone=UTC)
    add_jobs(scheduler, config=config, astore=astore, wake_sender=lambda: None, now_fn=lambda: NOW,
             mailman_password=PASSWORD)
    job = {j.id: j for j in scheduler.get_jobs()}["listbot-mailman"]
    assert job.trigger.interval == timedelta(seconds=300) and job.coalesce and job.max_instances == 1
    assert job.next_run_time == NOW
    await job.func()
    assert "anna@example.org" in await astore.run(mailman.members, config)


def test_a_member_known_only_to_mailman_is_answered(fake: FakeMailman, tmp_path: Path):
    # Through the command handler: an address only Mailman knows gets its answer; a stranger the refusal.
    roster = tmp_path / "roster.txt"
    roster.write_text("zoe@example.org\n")
    config = from_dict({
        "bot": {"address": "listbot@example.org"},
        "list": {"address": "wg@lists.example.org"},
        "embedded": {"enabled": False},
        "members": members_section(fake, roster=str(roster)),
    })
    store = Store.open(tmp_path / "bot.sqlite3")
    try:
        mailman.save(store, config, mailman.fetch_members(config, PASSWORD), NOW)
        bot = Bot(store, config)
        answered = bot.send("help", sender="Carla@Example.net")
        assert len(answered) == 1 and "not on its roster" not in text_of(answered[0])
        assert "> help" in text_of(answered[0])
        refused = bot.send("help", sender="stranger@evil.example")
        assert len(refused) == 1 and "not on its roster" in text_of(refused[0])
    finally:
        store.close()


def test_check_config_tries_mailman(fake: FakeMailman, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch):
    # check-config reads the roster once and says how many addresses; a wrong password is one line on stderr.
    data = {
        "list": {"address": "wg@lists.example.org"},
        "embedded": {"smtp_port": free_port(), "imap_port": free_port(), "outgoing": str(tmp_path / "out.mbox")},
        "store": {"path": str(tmp_path / "store.sqlite3")},
        "members": members_section(fake),
    }
    path = write_config(tmp_path / "listbot.toml", data)
    assert cli.main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"Mailman {fake.url}/lists/{LIST_ID}: 6 addresses on the rosters (member, moderator, owner)" in out

    monkeypatch.setenv(PASSWORD_ENV, "wrong-password")
    data["embedded"] = {**data["embedded"], "smtp_port": free_port(), "imap_port": free_port()}
    path = write_config(tmp_path / "listbot.toml", data)
    assert cli.main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"Mailman {fake.url}/lists/{LIST_ID}/roster/member: HTTP 401" in err[0], err
    assert "wrong-password" not in err[0]
