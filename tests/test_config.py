"""Configuration: the example documents the defaults; every bad value is refused naming file and key."""

import dataclasses
from pathlib import Path

import pytest

from bot import cli
from bot.config import Config, ConfigError, example_path, load_config

# Each bad config, and the words its one-line error must contain.
BAD = [
    ('[list]\ntimezone = "Mars/Olympus"\n', "[list] timezone"),
    ('[imap]\nport = "993"\n', "[imap] port: must be a whole number"),
    ("[imap]\nport = 70000\n", "[imap] port"),
    ('[imap]\nsecurity = "tls"\n', "[imap] security: must be one of"),
    ('[imap]\nhostname = "x"\n', "[imap] hostname: unknown key"),
    ('[mailserver]\nhost = "x"\n', "[mailserver]: unknown section"),
    ('[members]\nmoderators = "a@example.org"\n', "[members] moderators: must be a list of strings"),
    ("[embedded]\nenabled = 1\n", "[embedded] enabled: must be true or false"),
    ('[bot]\naddress = "nobody"\n', "[bot] address: must be an email address"),
    ("[imap]\nfetch_batch = 5000\n", "[imap] fetch_batch"),
    ("[reminders]\nzones = ['Europe/Nowhere']\n", "[reminders] zones"),
    ('[store]\npath = ""\n', "[store] path"),
    ("[list\n", "not valid TOML"),
    ('list = "x"\n', "list: must be a table"),
]


def test_example_is_the_defaults():
    # config/example.toml sets every key to its default: loading it equals loading nothing.
    loaded = load_config(example_path())
    assert dataclasses.replace(loaded, source=None) == Config()


def test_example_documents_every_key():
    # Every field of every section appears in the example file, so the file is the documentation.
    text = example_path().read_text()
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(section.type if isinstance(section.type, type) else getattr(Config(), section.name)):
            assert f"\n{key.name} = " in text, f"[{section.name}] {key.name} is not documented"


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, text: str, expected: str):
    # A bad value gives one ConfigError line that names the file and the key.
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path):
    # A config file that is not there is named in the error.
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # The CLI turns a bad config into one line on stderr and exit code 2, never a traceback.
    path = tmp_path / "bad.toml"
    path.write_text('[imap]\nport = "x"\n')
    code = cli.main(["upcoming", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "[imap] port" in err and "Traceback" not in err


def test_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    # Passwords are read from the named environment variable; a missing one names the key, not a value.
    config = Config()
    monkeypatch.setenv("LISTBOT_TEST_PW", "s3cret")
    assert config.secret("imap", "LISTBOT_TEST_PW") == "s3cret"
    monkeypatch.delenv("LISTBOT_TEST_PW")
    with pytest.raises(ConfigError, match=r"\[imap\] password_env: environment variable LISTBOT_TEST_PW is not set"):
        config.secret("imap", "LISTBOT_TEST_PW")
