"""The shell runners' runner.yaml files declare StackStorm's runner types and parameters."""

from __future__ import annotations

import pytest

from poundcake.engine.runners.base import Runner
from poundcake.engine.runners.registry import runner_class, runner_types

SHARED_LOCAL = {"cwd", "env", "kwarg_op", "sudo", "sudo_password", "timeout"}
SHARED_REMOTE = {
    "hosts",
    "username",
    "password",
    "private_key",
    "passphrase",
    "port",
    "bastion_host",
    "parallel",
    "cwd",
    "dir",
    "env",
    "kwarg_op",
    "sudo",
    "sudo_password",
    "timeout",
}


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("local-shell-cmd", SHARED_LOCAL | {"cmd"}),
        ("local-shell-script", SHARED_LOCAL | {"debug", "content_version"}),
        ("remote-shell-cmd", SHARED_REMOTE | {"cmd"}),
        ("remote-shell-script", SHARED_REMOTE),
    ],
)
def test_runner_type_declares_exactly_stackstorms_parameters(
    name: str, parameters: set[str]
) -> None:
    spec = runner_types()[name]
    assert spec.enabled
    assert set(spec.runner_parameters) == parameters
    cls = runner_class(name)
    assert issubclass(cls, Runner)
    assert cls.runner_type == name


@pytest.mark.parametrize(
    "name", ["local-shell-cmd", "local-shell-script", "remote-shell-cmd", "remote-shell-script"]
)
def test_defaults_and_secrets_match_stackstorm(name: str) -> None:
    parameters = runner_types()[name].runner_parameters
    assert parameters["kwarg_op"]["default"] == "--"
    assert parameters["sudo"]["default"] is False
    assert parameters["timeout"] == {**parameters["timeout"], "type": "integer", "default": 60}
    assert parameters["sudo_password"]["secret"] is True
    for spec in parameters.values():
        assert set(spec) <= {"type", "description", "default", "required", "secret", "immutable"}
        assert spec["type"] in {"string", "integer", "boolean", "object"}


@pytest.mark.parametrize("name", ["remote-shell-cmd", "remote-shell-script"])
def test_remote_parameters_match_stackstorm(name: str) -> None:
    parameters = runner_types()[name].runner_parameters
    assert parameters["hosts"]["required"] is True
    assert parameters["port"]["default"] == 22
    assert parameters["dir"]["default"] == "/tmp"
    for secret in ("password", "private_key", "passphrase", "sudo_password"):
        assert parameters[secret]["secret"] is True
