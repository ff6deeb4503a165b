"""Tests of the ``nsight-async`` argument layer: help texts, usage errors and settings.

Nothing here talks to a server: these are the checks a technician hits before
the first call (typos, bad durations, a missing key, the config file).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support import isolated_cli

from nsight_async._version import __version__
from nsight_async.cli import main
from nsight_async.cli._args import build_parser, duration
from nsight_async.cli._connect import connect, settings

KEY = "sk-CLITEST-7f3c9a"
SUBCOMMANDS = [
    "backup-audit",
    "patch-retry",
    "clients",
    "sites",
    "devices",
    "patches",
    "sessions",
    "call",
    "describe",
]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run every test in an empty directory, with no NSIGHT_* variables and no user config."""
    with isolated_cli(monkeypatch, tmp_path):
        yield


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


# -- help and version ---------------------------------------------------------


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` exits 0 and prints the installed version."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"nsight-async {__version__}"


def test_top_level_help_lists_every_subcommand_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--help`` exits 0, names every subcommand and explains every exit code."""
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in [*SUBCOMMANDS, "simulate"]:
        assert name in text
    for code in ("0 success", "1 unhealthy", "2 usage", "3 API", "4 network", "5 finished", "130"):
        assert code in text


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help_shows_an_example_and_the_exit_codes(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each subcommand's ``--help`` shows at least one example and the exit codes."""
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "Exit codes:" in text
    assert "130 interrupted" in text
    assert f"example: nsight-async {command}" in text, f"`{command} --help` shows no example"


# -- usage errors (exit 2) ----------------------------------------------------


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown flag exits 2 and names the flag."""
    assert main(["clients", "--demo", "--bogus-flag"]) == 2
    assert "--bogus-flag" in capsys.readouterr().err


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt subcommand exits 2 and lists the valid ones."""
    assert main(["backup-audti"]) == 2
    assert "backup-audit" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["3x", "three days", "-1d", ""])
def test_bad_duration_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A duration that does not parse exits 2 with a hint showing valid ones."""
    assert main(["backup-audit", "--demo", f"--stale-after={value}"]) == 2
    err = capsys.readouterr().err
    assert "--stale-after" in err
    assert "36h" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("36h", timedelta(hours=36)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
        ("12", timedelta(hours=12)),
        ("1.5d", timedelta(hours=36)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_duration_accepts_the_documented_units(text: str, expected: timedelta) -> None:
    """Durations take s/m/h/d/w suffixes, and a bare number means hours."""
    assert duration(text) == expected


def test_missing_server_without_demo_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With no server anywhere, the command exits 2 and says how to give one (or --demo)."""
    assert main(["clients"]) == 2
    err = capsys.readouterr().err
    assert "no server" in err
    assert "--server" in err
    assert "--demo" in err


def test_missing_key_without_demo_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a server but no key, the command exits 2 and names the ways to give a key."""
    monkeypatch.setenv("NSIGHT_SERVER", "http://127.0.0.1:9")
    assert main(["clients"]) == 2
    err = capsys.readouterr().err
    assert "no API key" in err
    assert "NSIGHT_API_KEY" in err
    assert "--api-key-file" in err


def test_out_with_an_unknown_suffix_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out x.txt`` exits 2, names the allowed suffixes and writes nothing."""
    assert main(["backup-audit", "--demo", "-q", "--out", "x.txt"]) == 2
    assert ".csv" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_api_key_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An ``--api-key-file`` that cannot be read exits 2 and says so."""
    code = main(["clients", "--server", "http://127.0.0.1:9", "--api-key-file", "nope.txt"])
    assert code == 2
    assert "API key file" in capsys.readouterr().err


# -- the config file ----------------------------------------------------------


def test_unknown_config_key_is_rejected_without_echoing_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt setting exits 2, names it and the allowed ones, and never prints its value."""
    config = tmp_path / "config.toml"
    config.write_text(f'server = "http://127.0.0.1:9"\napikey = "{KEY}"\n', "utf-8")
    assert main(["clients", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert "apikey" in captured.err
    assert "api_key" in captured.err  # the allowed spelling is suggested
    assert KEY not in captured.out + captured.err


def test_named_config_file_must_exist(capsys: pytest.CaptureFixture[str]) -> None:
    """``--config`` naming a missing file exits 2 instead of silently using defaults."""
    assert main(["clients", "--config", "missing.toml"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unparsable_config_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config file that is not TOML exits 2 and names the file."""
    config = tmp_path / "bad.toml"
    config.write_text(f"server = \napi_key = {KEY}\n", "utf-8")
    assert main(["clients", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err
    assert KEY not in err


def test_config_file_from_nsight_config_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$NSIGHT_CONFIG`` names the config file when ``--config`` is not given."""
    config = tmp_path / "env.toml"
    config.write_text(f'server = "uk"\napi_key = "{KEY}"\n', "utf-8")
    monkeypatch.setenv("NSIGHT_CONFIG", str(config))
    merged = settings(_parse("clients"))
    assert merged["server"] == "uk"
    assert merged["api_key"] == KEY


def test_default_config_file_is_read_from_home(tmp_path: Path) -> None:
    """Without --config or $NSIGHT_CONFIG, ~/.config/nsight-async/config.toml is read."""
    config = tmp_path / ".config" / "nsight-async" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'server = "us"\napi_key = "{KEY}"\nmax_at_once = 3\n', "utf-8")
    merged = settings(_parse("clients"))
    assert (merged["server"], merged["api_key"], merged["max_at_once"]) == ("us", KEY, 3)


def test_precedence_is_flags_then_environment_then_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each setting comes from the flag if given, else the environment, else the file."""
    config = tmp_path / "config.toml"
    config.write_text(
        'server = "uk"\napi_key = "file-key-0001"\nmax_per_minute = 30\n'
        "max_at_once = 2\ntimeout = 11\n",
        "utf-8",
    )
    only_file = settings(_parse("clients", "--config", str(config)))
    assert only_file == {
        "server": "uk",
        "api_key": "file-key-0001",
        "max_per_minute": 30,
        "max_at_once": 2,
        "timeout": 11,
    }
    monkeypatch.setenv("NSIGHT_SERVER", "us")
    monkeypatch.setenv("NSIGHT_API_KEY", "env-key-0002")
    monkeypatch.setenv("NSIGHT_MAX_PER_MINUTE", "45")
    env_over_file = settings(_parse("clients", "--config", str(config)))
    assert env_over_file["server"] == "us"
    assert env_over_file["api_key"] == "env-key-0002"
    assert env_over_file["max_per_minute"] == 45
    assert env_over_file["max_at_once"] == 2  # not in the environment: still the file's
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n", "utf-8")
    flags = settings(
        _parse(
            "clients", "--config", str(config), "--server", "europe",
            "--api-key-file", str(key_file), "--max-per-minute", "90", "--max-at-once", "4",
            "--timeout", "5",
        )
    )  # fmt: skip
    assert flags == {
        "server": "europe",
        "api_key": KEY,  # stripped of its newline
        "max_per_minute": 90,
        "max_at_once": 4,
        "timeout": 5,
    }


@pytest.mark.parametrize("source", ["flag", "env", "config"])
def test_max_per_minute_zero_means_no_limit(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rate of 0 from any source means no limit, as the help promises."""
    monkeypatch.setenv("NSIGHT_SERVER", "uk")
    monkeypatch.setenv("NSIGHT_API_KEY", KEY)
    argv = ["clients"]
    if source == "flag":
        argv += ["--max-per-minute", "0"]
    elif source == "env":
        monkeypatch.setenv("NSIGHT_MAX_PER_MINUTE", "0")
    else:
        config = tmp_path / "c.toml"
        config.write_text("max_per_minute = 0\n", "utf-8")
        argv += ["--config", str(config)]
    assert settings(_parse(*argv))["max_per_minute"] is None


async def test_demo_max_per_minute_zero_means_no_limit() -> None:
    """``--demo --max-per-minute 0`` runs unthrottled, like 0 everywhere else."""
    async with connect(_parse("clients", "--demo", "--max-per-minute", "0")) as client:
        assert client.limits.max_per_minute is None


async def test_demo_keeps_explicit_limits() -> None:
    """``--demo`` honours an explicit ``--max-per-minute`` and ``--max-at-once``."""
    args = _parse("clients", "--demo", "--max-per-minute", "300", "--max-at-once", "3")
    async with connect(args) as client:
        assert client.limits.max_per_minute == 300
        assert client.limits.max_at_once == 3
