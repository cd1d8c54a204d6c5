"""Configuration: defaults, template, env overrides, clear errors, secrets never leak."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.config import Settings, load_settings, template_text
from aitrader.errors import ConfigError

SECRET = "sk-live-6f1e2d3c4b5a"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AITRADER"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_template_loads_to_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "a.yaml", template_text()))
    assert settings == Settings()
    assert settings.costs.taker_fee == 0.001 and settings.costs.slippage_bps >= 1


def test_round_trip_cost_counts_both_legs() -> None:
    assert Settings().costs.round_trip == pytest.approx(2 * (0.001 + 0.0002))


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.costs.taker_fee = 0.0  # type: ignore[misc]


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "c.yaml", "costs:\n  taker_fee: 0.002\ndata:\n  dir: /tmp/x\n")
    monkeypatch.setenv("AITRADER__COSTS__TAKER_FEE", "0.0004")
    settings = load_settings(path)
    assert settings.costs.taker_fee == 0.0004
    assert settings.data.dir == Path("/tmp/x")


def test_invalid_value_names_key_value_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "qc:\n  duplicates: maybe\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "qc.duplicates" in message and "'maybe'" in message
    assert "'reject', 'drop' or 'flag'" in message


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"costs\.taker_fees"):
        load_settings(write(tmp_path / "bad.yaml", "costs:\n  taker_fees: 0.1\n"))


def test_invalid_config_exits_with_code_2(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "costs:\n  taker_fee: -1\n")
    result = CliRunner().invoke(app, ["--config", str(path), "config"])
    assert result.exit_code == 2
    assert "costs.taker_fee" in result.output


def test_secrets_in_config_file_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", f"secrets:\n  telegram_token: {SECRET}\n")
    with pytest.raises(ConfigError, match="secrets are not allowed") as info:
        load_settings(path)
    assert SECRET not in str(info.value)


def test_secrets_file_must_be_private(tmp_path: Path) -> None:
    secrets = write(tmp_path / "secrets.yaml", f"exchanges:\n  binance:\n    api_key: {SECRET}\n")
    secrets.chmod(0o644)
    config = write(tmp_path / "c.yaml", f"secrets_file: {secrets}\n")
    with pytest.raises(ConfigError, match="chmod 600"):
        load_settings(config)
    secrets.chmod(0o600)
    settings = load_settings(config)
    key = settings.secrets.exchanges["binance"].api_key
    assert key is not None and key.get_secret_value() == SECRET


def test_secrets_never_printed_logged_or_serialised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AITRADER__SECRETS__EXCHANGES__BINANCE__SECRET", SECRET)
    monkeypatch.setenv("AITRADER__SECRETS__TELEGRAM_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    settings = load_settings(None)
    logging.getLogger("aitrader.test").info("settings %s", settings)
    runner = CliRunner()
    shown = runner.invoke(app, ["--log-level", "DEBUG", "config"])
    shown_json = runner.invoke(app, ["config", "--json"])
    assert shown.exit_code == 0 and shown_json.exit_code == 0
    dumps = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        json.dumps(settings.redacted()),
        shown.output,
        shown_json.output,
        caplog.text,
    ]
    for text in dumps:
        assert SECRET not in text
    assert "**********" in shown_json.output
    secret = settings.secrets.exchanges["binance"].secret
    assert secret is not None and secret.get_secret_value() == SECRET


def test_init_writes_template_and_refuses_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "aitrader.yaml"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 0
    assert load_settings(target) == Settings()
    again = runner.invoke(app, ["init", str(target)])
    assert again.exit_code == 2 and "already exists" in again.output
