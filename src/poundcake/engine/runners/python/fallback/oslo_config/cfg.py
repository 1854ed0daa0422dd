"""``cfg.CONF`` as StackStorm pack code reads it (``cfg.CONF.system_user.ssh_key_file``).

Options come from the engine's st2.conf (``ST2_CONFIG_PATH``) as text, or from StackStorm's
default for the few options packs read; any other option raises :class:`NoSuchOptError`, an
``AttributeError``, naming it.
"""

from __future__ import annotations

from typing import Any

from poundcake.config import load_st2_config

__all__ = ["CONF", "NoSuchOptError"]

# StackStorm's defaults of the options StackStorm's own packs read.
DEFAULTS: dict[str, dict[str, Any]] = {
    "system_user": {"user": "stanley", "ssh_key_file": "/home/stanley/.ssh/stanley_rsa"},
}


class NoSuchOptError(AttributeError):
    """The option is neither in st2.conf nor one whose StackStorm default is known here."""

    def __init__(self, section: str, option: str) -> None:
        super().__init__(f"no such option [{section}] {option} in st2.conf")


class _Section:
    def __init__(self, name: str, values: dict[str, Any]) -> None:
        self._name = name
        self._values = values

    def __getattr__(self, option: str) -> Any:
        try:
            return self._values[option]
        except KeyError:
            raise NoSuchOptError(self._name, option) from None

    def __getitem__(self, option: str) -> Any:
        return self.__getattr__(option)


class _Config:
    """The engine's st2.conf, read once on first use."""

    def __init__(self) -> None:
        self._sections: dict[str, dict[str, Any]] | None = None

    def _read(self) -> dict[str, dict[str, Any]]:
        if self._sections is None:
            sections = {name: dict(values) for name, values in DEFAULTS.items()}
            for name, values in load_st2_config().sections.items():
                sections.setdefault(name, {}).update(values)
            self._sections = sections
        return self._sections

    def __getattr__(self, section: str) -> _Section:
        if section.startswith("_"):
            raise AttributeError(section)
        return _Section(section, self._read().get(section, {}))

    def __getitem__(self, section: str) -> _Section:
        return self.__getattr__(section)


CONF = _Config()
