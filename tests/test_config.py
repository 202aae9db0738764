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


def test_client_credentials_need_no_user_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Client id + secret alone are credentials (Pictory's Getting Started asks for no user id,
    §6.1): no PICTORY_USER_ID, no error, and none is sent; set, it is kept to be sent."""
    monkeypatch.delenv("PICTORY_API_KEY", raising=False)
    monkeypatch.delenv("PICTORY_USER_ID", raising=False)
    monkeypatch.setenv("PICTORY_CLIENT_ID", "client")
    monkeypatch.setenv("PICTORY_CLIENT_SECRET", "secret")
    creds = load_credentials(required=True)
    assert creds.kind == "client_credentials" and creds.user_id is None
    assert "without a user id" in creds.describe()
    monkeypatch.setenv("PICTORY_USER_ID", "u-1")
    assert load_credentials(required=True).user_id == "u-1"


@pytest.mark.parametrize("given", ["PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET"])
def test_half_of_the_client_credentials_is_refused_naming_the_other(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """The id without the secret (or the reverse) is one line naming the missing variable."""
    for name in ("PICTORY_API_KEY", "PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(given, "value")
    other = ({"PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET"} - {given}).pop()
    with pytest.raises(ConfigError, match=f"{given} is set but {other} is not"):
        load_credentials(required=True)


def test_credentials_describe_their_kind_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """``describe`` names the kind and the variables, never a value."""
    monkeypatch.setenv("PICTORY_API_KEY", "pictai_topsecret")
    key = load_credentials(required=True)
    assert "API key" in key.describe() and "topsecret" not in key.describe()
    monkeypatch.delenv("PICTORY_API_KEY")
    monkeypatch.setenv("PICTORY_CLIENT_ID", "cid-secretish")
    monkeypatch.setenv("PICTORY_CLIENT_SECRET", "sec-value")
    monkeypatch.setenv("PICTORY_USER_ID", "u-1")
    text = load_credentials(required=True).describe()
    assert "with the user id from PICTORY_USER_ID" in text
    assert "cid-secretish" not in text and "sec-value" not in text and "u-1" not in text
