"""Settings nobody reads are named once at startup; a setting we parse works or is refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from poundcake.config import (
    Settings,
    load_st2_config,
    log_unread_env_settings,
    log_unread_st2_settings,
)
from poundcake.config_sections import SECTIONS
from poundcake.config_unread import STACKSTORM_OPTIONS, unread_env_settings, unread_st2_settings
from poundcake.exceptions import ConfigurationError

ST2_CONF = """\
[database]
backend = sqlite
authentication_mechanism = SCRAM-SHA-1

[api]
port = 9101
allow_origin = *

[auth]
use_ssl = True

[metrics]
driver = statsd

[coordination]
lock_timeout = 30
luck_timeout = 30

[my_plugin]
colour = blue
"""


def test_every_unread_st2_setting_is_named_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "st2.conf"
    path.write_text(ST2_CONF)
    config = load_st2_config(path)
    assert unread_st2_settings(config.sections) == [
        "[api] allow_origin (not supported)",
        "[auth] use_ssl (not supported)",
        "[coordination] luck_timeout (unknown)",
        "[database] authentication_mechanism (not supported)",
        "[metrics] driver (not supported)",
        "[my_plugin] colour (unknown)",
    ]
    with caplog.at_level(logging.WARNING, logger="poundcake.config"):
        log_unread_st2_settings(config)
    [record] = caplog.records
    assert str(path) in record.getMessage()
    assert "[metrics] driver (not supported)" in record.getMessage()


def test_what_we_read_draws_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    every_key = {name: dict.fromkeys(model.model_fields, "x") for name, model in SECTIONS.items()}
    assert unread_st2_settings(every_key) == []
    path = tmp_path / "st2.conf"
    path.write_text("[database]\nbackend = sqlite\n[api]\nmask_secrets = False\n")
    with caplog.at_level(logging.WARNING):
        log_unread_st2_settings(load_st2_config(path))
    assert caplog.records == []


def test_stackstorm_options_we_model_are_stackstorm_names() -> None:
    # Sanity of the table: the options both sides know keep StackStorm's spelling.
    assert "lock_timeout" in STACKSTORM_OPTIONS["coordination"]
    assert "partition_provider" in STACKSTORM_OPTIONS["sensorcontainer"]
    assert "index_url" in STACKSTORM_OPTIONS["content"]


def test_auth_disabled_is_refused_naming_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "st2.conf"
    path.write_text("[database]\nbackend = sqlite\n[auth]\nenable = False\n")
    with pytest.raises(ConfigurationError, match=r"\[auth\] enable in .*false is not supported"):
        load_st2_config(path)
    path.write_text("[database]\nbackend = sqlite\n[auth]\nenable = True\n")
    assert load_st2_config(path).auth.enable is True


def test_unread_env_file_keys_and_guide_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "ST2_API_URL=http://localhost:9101/v1\nST2_AUTH_URL=http://localhost:9100/tokens\n"
        "POUNDCAKE_PROT=8081\npoundcake_port=8082\n"
    )
    read = [field.alias or name for name, field in Settings.model_fields.items()]
    assert unread_env_settings(env, read, {}) == [
        "POUNDCAKE_PROT (unknown)",
        "ST2_AUTH_URL (not needed: PoundCake authenticates to the engine with ST2_API_KEY)",
    ]
    missing = tmp_path / "none.env"
    assert unread_env_settings(missing, read, {"ST2_AUTH_URL": "x"}) == [
        "ST2_AUTH_URL (not needed: PoundCake authenticates to the engine with ST2_API_KEY)"
    ]
    assert unread_env_settings(missing, read, {"PATH": "/bin"}) == []
    with caplog.at_level(logging.WARNING, logger="poundcake.config"):
        log_unread_env_settings(env)
    [record] = caplog.records
    assert "POUNDCAKE_PROT (unknown)" in record.getMessage()
