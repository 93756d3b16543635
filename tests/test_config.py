from __future__ import annotations

import pytest

from wiro_seedream_mcp.config import DEFAULT_BASE_URL, DEFAULT_WAIT_TIMEOUT, ConfigError, Settings


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.api_key is None
    assert settings.api_secret is None
    assert not settings.has_credentials
    assert settings.base_url == DEFAULT_BASE_URL == "https://api.wiro.ai/v1"
    assert settings.wait_timeout == DEFAULT_WAIT_TIMEOUT == 50.0


def test_reads_every_variable() -> None:
    settings = Settings.from_env(
        {
            "WIRO_API_KEY": " key ",
            "WIRO_API_SECRET": "secret",
            "WIRO_API_BASE_URL": "http://127.0.0.1:9/v1/",
            "WIRO_WAIT_TIMEOUT": "12.5",
        }
    )
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "key"
    assert settings.api_secret is not None and settings.api_secret.get_secret_value() == "secret"
    assert settings.signed
    assert settings.base_url == "http://127.0.0.1:9/v1"
    assert settings.wait_timeout == 12.5


@pytest.mark.parametrize("blank", ["", "   ", "${user_config.api_key}", "${user_config.wiro_api_secret}"])
def test_blank_or_unexpanded_values_count_as_unset(blank: str) -> None:
    settings = Settings.from_env(
        {
            "WIRO_API_KEY": blank,
            "WIRO_API_SECRET": blank,
            "WIRO_WAIT_TIMEOUT": blank,
            "WIRO_API_BASE_URL": blank,
        }
    )
    assert settings.api_key is None
    assert settings.api_secret is None
    assert settings.wait_timeout == DEFAULT_WAIT_TIMEOUT
    assert settings.base_url == DEFAULT_BASE_URL


def test_key_only_mode_when_no_secret() -> None:
    settings = Settings.from_env({"WIRO_API_KEY": "k", "WIRO_API_SECRET": "${user_config.secret}"})
    assert settings.has_credentials
    assert not settings.signed


def test_secret_without_key_is_noted() -> None:
    settings = Settings.from_env({"WIRO_API_SECRET": "s"})
    assert not settings.has_credentials
    assert any("WIRO_API_KEY" in note for note in settings.notes)


@pytest.mark.parametrize(
    ("value", "words"),
    [("soon", "must be a number"), ("-1", "between 0 and 3600"), ("nan", "between"), ("4000", "between")],
)
def test_bad_wait_timeout_is_explained(value: str, words: str) -> None:
    with pytest.raises(ConfigError, match="WIRO_WAIT_TIMEOUT") as info:
        Settings.from_env({"WIRO_WAIT_TIMEOUT": value})
    assert words in str(info.value)


@pytest.mark.parametrize("url", ["api.wiro.ai/v1", "ftp://api.wiro.ai/v1", "https://", "https://h/v1?x=1"])
def test_bad_base_url_is_explained(url: str) -> None:
    with pytest.raises(ConfigError, match="WIRO_API_BASE_URL"):
        Settings.from_env({"WIRO_API_BASE_URL": url})


@pytest.mark.parametrize("url", ["ftp://user:hunter2@host", "https://user:hunter2@api.wiro.ai/v1"])
def test_base_url_with_credentials_is_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"WIRO_API_BASE_URL": url})
    assert "hunter2" not in str(info.value)


def test_secrets_never_in_repr_or_str() -> None:
    settings = Settings.from_env({"WIRO_API_KEY": "key-AAAA", "WIRO_API_SECRET": "secret-BBBB"})
    for text in (repr(settings), str(settings), f"{settings}"):
        assert "key-AAAA" not in text
        assert "secret-BBBB" not in text


def test_missing_credentials_message_names_the_variable() -> None:
    assert "WIRO_API_KEY" in Settings().missing_credentials_message()


def test_socket_url_follows_the_base_url() -> None:
    assert Settings.from_env({}).socket_url == "wss://socket.wiro.ai/v1"
    assert (
        Settings.from_env({"WIRO_API_BASE_URL": "https://api.wiro.ai/v1"}).socket_url
        == "wss://socket.wiro.ai/v1"
    )
    local = Settings.from_env({"WIRO_API_BASE_URL": "http://127.0.0.1:8787/v1"})
    assert local.socket_url == "ws://127.0.0.1:8787/v1/socket"
    proxied = Settings.from_env({"WIRO_API_BASE_URL": "https://proxy.example.com/wiro/v1"})
    assert proxied.socket_url == "wss://proxy.example.com/wiro/v1/socket"


@pytest.mark.parametrize("off", ["off", "OFF", "none", "false", "0"])
def test_socket_can_be_switched_off(off: str) -> None:
    assert Settings.from_env({"WIRO_SOCKET_URL": off}).socket_url is None


def test_socket_url_is_checked() -> None:
    assert Settings.from_env({"WIRO_SOCKET_URL": "wss://example.com/v1"}).socket_url == "wss://example.com/v1"
    with pytest.raises(ConfigError, match="WIRO_SOCKET_URL must be a ws:// or wss:// URL"):
        Settings.from_env({"WIRO_SOCKET_URL": "https://socket.wiro.ai/v1"})


@pytest.mark.parametrize(
    ("value", "stop", "links"),
    [(None, False, True), ("on", True, True), ("off", False, False), ("TRUE", True, True)],
)
def test_the_cancel_rule_and_the_links_are_switches(value: str | None, stop: bool, links: bool) -> None:
    env = {} if value is None else {"WIRO_STOP_ON_CANCEL": value, "WIRO_RESOURCE_LINKS": value}
    settings = Settings.from_env(env)
    assert settings.stop_on_cancel is stop
    assert settings.resource_links is links


@pytest.mark.parametrize("name", ["WIRO_STOP_ON_CANCEL", "WIRO_RESOURCE_LINKS"])
def test_a_switch_takes_on_or_off_only(name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name} must be on or off; got 'maybe'$"):
        Settings.from_env({name: "maybe"})
