"""Large results as recorded: EncodedText, JSON in pieces, pieces of bounded size."""

from __future__ import annotations

import json
from typing import Any

import pytest

from poundcake.engine.executions.results import (
    PIECE_BYTES,
    EncodedText,
    bounded_pieces,
    holds_encoded_text,
    json_pieces,
    plain,
)

# Every character json.dumps escapes (quotes, backslashes, each control character), 2-, 3- and
# 4-byte UTF-8, DEL and U+2028 (neither escaped by json.dumps with ensure_ascii=False).
AWKWARD = "".join(chr(code) for code in range(32)) + "\"\\/ é€🙂\x7f\u2028 it's\n"


def encoded(text: str) -> EncodedText:
    return EncodedText(text.encode())


def as_json(value: Any) -> bytes:
    return json.dumps(plain(value), default=str, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "value",
    [
        encoded(AWKWARD),
        encoded(""),
        {"stdout": encoded(AWKWARD * 3), "stderr": "x", "return_code": 0, "failed": False},
        {"stdout": encoded("a"), 2: None, 2.5: 1, True: [1.5, None], None: {"k": "é"}},
        {"stdout": encoded("a"), "when": ValueError("not JSON")},
        {"plain": AWKWARD},
        [AWKWARD, 1],
    ],
)
def test_json_pieces_are_the_text_json_dumps_gives(value: Any) -> None:
    assert b"".join(json_pieces(value)) == as_json(value)


def test_a_large_text_is_escaped_piece_by_piece_across_split_characters() -> None:
    # PIECE_BYTES is not a multiple of the 4-byte lines: pieces end inside characters.
    text = '🙂"\\\n\tx' * (PIECE_BYTES // 5)
    result = {"stdout": encoded(text), "stderr": ""}
    pieces = list(json_pieces(result))
    assert max(len(piece) for piece in pieces) <= 2 * PIECE_BYTES
    assert b"".join(pieces) == as_json(result)
    assert json.loads(b"".join(pieces))["stdout"] == text


def test_bounded_pieces_regroup_bytes_without_losing_or_reordering_any() -> None:
    pieces = [b"ab", b"c" * 10, b"", b"d" * 3, b"e" * 8]
    regrouped = list(bounded_pieces(iter(pieces), 4))
    assert b"".join(regrouped) == b"".join(pieces)
    assert [len(piece) for piece in regrouped] == [4] * 5 + [3]


def test_encoded_text_strips_a_suffix_and_finds_json_after_unicode_whitespace() -> None:
    text = encoded('\u3000\n {"a": 1}\r\n')
    assert str(text.removesuffix("\n").removesuffix("\r")) == '\u3000\n {"a": 1}'
    assert text.removesuffix("x") is text
    assert text.lstrip_startswith(("{", "["))
    assert not encoded("\u00a0 plain").lstrip_startswith(("{", "["))
    assert not encoded(" " * 10_000).lstrip_startswith(("{",))
    assert encoded(" " * 10_000 + "[").lstrip_startswith(("[",))


def test_plain_decodes_encoded_text_and_leaves_other_results_alone() -> None:
    result = {"stdout": encoded("é🙂"), "stderr": "x"}
    assert holds_encoded_text(result)
    assert plain(result) == {"stdout": "é🙂", "stderr": "x"}
    assert not holds_encoded_text(plain(result))
    other = {"a": [1]}
    assert plain(other) is other
