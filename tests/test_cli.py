"""The command line: parse (the JSON contract), import (files, Maildir, mbox; idempotent), upcoming."""

import json
import mailbox
import shutil
from pathlib import Path

import pytest

from bot import cli
from bot.paths import data_dir

POST = """\
From: Ana Rivera <ana@example.org>
To: wg@lists.example.org
Subject: [WG] Call for comments on the outline
Date: Tue, 10 Mar 2026 10:00:00 +0100
Message-ID: <{mid}@example.org>
Content-Type: text/plain; charset=utf-8

Dear all,

Please send your comments on the draft outline by Friday 20 March 2026.

Our next call will be on Thursday 26 March 2026, 14:00-15:00 UTC.

Ana
"""


def write_post(folder: Path, mid: str) -> Path:
    path = folder / f"{mid}.eml"
    path.write_text(POST.format(mid=mid))
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "listbot.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "store.sqlite3"}"\n[list]\ntimezone = "Europe/Berlin"\n')
    return path


def test_parse_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # parse --json prints one object per file with every contract key, dates in ISO 8601.
    post = write_post(tmp_path, "one")
    assert cli.main(["parse", "--json", str(post)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    for key in ("file", "message_id", "subject", "date", "kind", "rules", "deadlines", "meetings",
                "action_items", "links", "summary"):
        assert key in record
    assert record["message_id"] == "<one@example.org>"
    assert [d["due"][:10] for d in record["deadlines"]] == ["2026-03-20"]
    deadline = record["deadlines"][0]
    assert set(deadline) >= {"due", "what", "who", "approx", "conflict", "past", "text"}
    assert "comments" in deadline["what"].lower()
    meeting = record["meetings"][0]
    assert set(meeting) >= {"start", "end", "what", "where", "approx", "conflict", "past", "text"}
    assert meeting["start"] == "2026-03-26T14:00:00+00:00" and meeting["end"] == "2026-03-26T15:00:00+00:00"


def test_parse_unreadable_file_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # An unreadable file gives an "error" line and the run goes on; exit 0 since one file was read.
    post = write_post(tmp_path, "two")
    assert cli.main(["parse", "--json", str(tmp_path / "missing.eml"), str(post)]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["file"].endswith("missing.eml") and "error" in first
    assert second["message_id"] == "<two@example.org>"
    assert cli.main(["parse", "--json", str(tmp_path / "missing.eml")]) == 1


def test_parse_table_and_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # Without --json a readable table; --explain says which rules hit.
    post = write_post(tmp_path, "three")
    assert cli.main(["parse", "--explain", str(post)]) == 0
    out = capsys.readouterr().out
    assert "deadline" in out and "2026-03-20" in out and "why" in out


def test_import_eml_maildir_mbox_idempotent(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]):
    # .eml files, a Maildir and an mbox are imported; a second import adds nothing.
    files = tmp_path / "files"
    files.mkdir()
    write_post(files, "f1")
    md = mailbox.Maildir(str(tmp_path / "md"), create=True)
    md.add(POST.format(mid="m1").encode())
    mb = mailbox.mbox(str(tmp_path / "archive.mbox"))
    mb.add(POST.format(mid="x1").encode())
    mb.add(POST.format(mid="x2").replace("Dear all", "From the chair: dear all").encode())
    mb.close()
    args = ["import", "--config", str(config_file), str(files), str(tmp_path / "md"), str(tmp_path / "archive.mbox")]
    assert cli.main(args) == 0
    assert "imported 4 new messages, 0 already known, 0 skipped" in capsys.readouterr().out
    assert cli.main(args) == 0
    assert "imported 0 new messages, 4 already known" in capsys.readouterr().out


def test_import_reports_bad_files_and_goes_on(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]):
    # Missing and empty files are reported, each on its own line, and the good one is still imported.
    (tmp_path / "empty.eml").write_bytes(b"")
    good = write_post(tmp_path, "good")
    code = cli.main(["import", "--config", str(config_file), str(tmp_path / "nope.eml"), str(tmp_path / "empty.eml"), str(good)])
    captured = capsys.readouterr()
    assert code == 0
    assert "nope.eml: skipped" in captured.err and "empty.eml: skipped: empty file" in captured.err
    assert "imported 1 new messages, 0 already known, 2 skipped" in captured.out


def test_upcoming_in_a_zone(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]):
    # upcoming shows what is ahead of --now, times in the --tz zone and UTC, items with ids.
    write_post(tmp_path, "up")
    cli.main(["import", "--config", str(config_file), str(tmp_path / "up.eml")])
    capsys.readouterr()
    assert cli.main(["upcoming", "--config", str(config_file), "--now", "2026-03-15T00:00:00+00:00",
                     "--tz", "America/New_York", "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert "2026-03-20" in out and "deadline" in out
    assert "2026-03-26 10:00 EDT" in out and "(14:00 UTC)" in out
    assert cli.main(["upcoming", "--config", str(config_file), "--now", "2026-04-01"]) == 0
    assert "nothing ahead" in capsys.readouterr().out


def test_shipped_samples_import(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]):
    # The README's sample commands work on the posts shipped in examples/.
    samples = tmp_path / "samples"
    shutil.copytree(data_dir("examples"), samples)
    assert cli.main(["import", "--config", str(config_file), str(samples)]) == 0
    assert cli.main(["upcoming", "--config", str(config_file), "--now", "2026-11-21"]) == 0
    out = capsys.readouterr().out
    assert "2026-12-03" in out and "2026-12-11" in out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]):
    # A bad --tz or --now is refused by the argument parser with exit code 2.
    with pytest.raises(SystemExit) as info:
        cli.main(["upcoming", "--tz", "Nowhere/City"])
    assert info.value.code == 2
    assert "unknown time zone" in capsys.readouterr().err
