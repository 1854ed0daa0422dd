"""Hostile values for the injection properties: what an attacker who sets alert labels would try."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

CANARY = "CANARY"
"""Replaced by the canary file's path in every generated value."""

# Pieces an attacker who controls alert labels would try; hypothesis strings them together with
# arbitrary unicode (no NUL: no process argument can hold one; test_injection tests NUL apart).
HOSTILE = [
    "; touch CANARY",
    "$(touch CANARY)",
    "`touch CANARY`",
    "' ; touch CANARY ; '",
    '" ; touch CANARY ; "',
    "\ntouch CANARY\n",
    "| touch CANARY",
    "&& touch CANARY",
    "$IFS",
    "${HOME}",
    "\\",
    "'",
    '"',
    "-n",
    "%s%d",
    "*",
    "{{ 7 * 7 }}",
    "{% for i in range(3) %}{{ i }}{% endfor %}",
    "{{ st2kv.system.secret }}",
    "{{ st2kv.system.secret | decrypt_kv }}",
    "{{ alert }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch CANARY') }}",
    "{{ lipsum.__globals__['os'].popen('touch CANARY').read() }}",
    "{% raw %}",
    "{#",
    "ü∑ 😀 \u202e",
    "\t",
    "\r\n",
]
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
VALUES = st.lists(st.one_of(st.sampled_from(HOSTILE), TEXT), min_size=1, max_size=4).map("".join)


def with_canary(value: str, canary: Path) -> str:
    """``value`` with every ``CANARY`` replaced by the canary file's path."""
    return value.replace(CANARY, str(canary))
