"""Config: unknown keys and wrong types are errors naming the key; secrets come from env only."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from orchestrator.config import Config, load_config, load_credentials
from orchestrator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_lists_every_default() -> None:
    """config.example.toml parses, and its values are exactly the defaults."""
    data = tomllib.loads((ROOT / "config.example.toml").read_text())
    assert Config.model_validate(data) == Config()


def test_unknown_key_is_named(tmp_path: Path) -> None:
    """A typo in a key is an error naming file and key, never silently dropped."""
    path = tmp_path / "c.toml"
    path.write_text("[limits]\nmax_request_per_s = 3\n")
    with pytest.raises(ConfigError, match=r"c.toml: unknown key 'limits.max_request_per_s'"):
        load_config(path)


def test_wrong_type_is_named(tmp_path: Path) -> None:
    """A value of the wrong type names the key."""
    path = tmp_path / "c.toml"
    path.write_text('[poll]\nrender_interval_s = "soon"\n')
    with pytest.raises(ConfigError, match=r"key 'poll.render_interval_s'"):
        load_config(path)


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PICTORY_API_BASE_URL overrides the default base URL."""
    monkeypatch.setenv("PICTORY_API_BASE_URL", "http://127.0.0.1:9/pictoryapis")
    assert load_config(None).api.base_url == "http://127.0.0.1:9/pictoryapis"


def test_credentials_required_for_the_real_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without credentials in the environment a real run is refused with what to set."""
    for name in ("PICTORY_API_KEY", "PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="PICTORY_API_KEY"):
        load_credentials(required=True)
    monkeypatch.setenv("PICTORY_API_KEY", "pictai_secret123")
    creds = load_credentials(required=True)
    assert creds.kind == "api_key"
    assert "pictai_secret123" not in repr(creds)


def test_readable_config_with_a_secret_warns(tmp_path: Path) -> None:
    """A world-readable config file that mentions a secret gets a warning (chmod 600)."""
    path = tmp_path / "c.toml"
    path.write_text('[api]\nuser_agent = "x pictai_abc"\n')
    path.chmod(0o644)
    warnings: list[str] = []
    load_config(path, warn=warnings)
    assert warnings and "chmod 600" in warnings[0]


def test_readable_config_without_a_secret_does_not_warn(tmp_path: Path) -> None:
    """Keys that merely contain 'token' (token_refresh_margin_s) are no secret: no warning."""
    path = tmp_path / "c.toml"
    path.write_text("[api]\ntoken_refresh_margin_s = 60.0\n")
    path.chmod(0o644)
    warnings: list[str] = []
    load_config(path, warn=warnings)
    assert warnings == []


def test_client_credentials_without_a_user_id_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Client credentials need PICTORY_USER_ID (the API answers 401 to every call without it),
    so it is asked for up front instead of failing every row."""
    monkeypatch.delenv("PICTORY_API_KEY", raising=False)
    monkeypatch.delenv("PICTORY_USER_ID", raising=False)
    monkeypatch.setenv("PICTORY_CLIENT_ID", "client")
    monkeypatch.setenv("PICTORY_CLIENT_SECRET", "secret")
    with pytest.raises(ConfigError, match="PICTORY_USER_ID"):
        load_credentials(required=True)
