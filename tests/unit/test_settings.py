from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import MIB, Settings


def test_defaults_are_sane() -> None:
    settings = Settings.load()
    assert settings.listen == "127.0.0.1:7443"
    assert settings.max_message_bytes == 4 * MIB
    assert settings.routing.max_depth == 8
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("/.fedgate/fedgate.db")


def test_environment_with_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDGATE_LISTEN", "0.0.0.0:9000")
    monkeypatch.setenv("FEDGATE_LEASE__DEFAULT_TTL", "30")
    monkeypatch.setenv("FEDGATE_DATABASE_URL", "postgresql://db/fed")
    settings = Settings.load()
    assert settings.listen == "0.0.0.0:9000"
    assert settings.lease.default_ttl == 30.0
    assert settings.effective_database_url == "postgresql://db/fed"


def test_config_file_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "fedgate.toml"
    config.write_text('listen = "127.0.0.1:7001"\n[routing]\nmax_depth = 3\n')
    assert Settings.load(config).routing.max_depth == 3
    monkeypatch.setenv("FEDGATE_LISTEN", "127.0.0.1:7002")
    assert Settings.load(config).listen == "127.0.0.1:7002"  # environment beats the file
    assert Settings.load(config, listen="127.0.0.1:7003").listen == "127.0.0.1:7003"
    assert Settings.load().listen == "127.0.0.1:7002"  # the file applies to one load only


@pytest.mark.parametrize(
    "env",
    [
        {"FEDGATE_LISTEN": "nonsense"},
        {"FEDGATE_MAX_MESSAGE_BYTES": "0"},
        {"FEDGATE_ROUTING__MAX_DEPTH": "0"},
    ],
)
def test_bad_values_are_rejected(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        Settings.load()
