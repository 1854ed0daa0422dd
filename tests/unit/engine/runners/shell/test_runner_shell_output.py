"""Output split into lines for the sink while the whole text is kept."""

from __future__ import annotations

from poundcake.engine.executions.results import ENCODED_TEXT_BYTES, EncodedText
from poundcake.engine.runners.shell.output import MAX_LINE_BYTES, LineStream


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, output_type: str, data: str) -> None:
        self.calls.append((output_type, data))


def test_lines_are_passed_on_whole_even_when_chunks_split_them() -> None:
    sink = Sink()
    stream = LineStream("stdout", sink)
    for chunk in (b"fir", b"st\nsec", b"ond\nthi", b"rd"):
        stream.feed(chunk)
    assert sink.calls == [("stdout", "first\n"), ("stdout", "second\n")]
    stream.close()
    assert sink.calls[-1] == ("stdout", "third")
    assert stream.text() == "first\nsecond\nthird"


def test_a_multibyte_character_split_across_chunks_is_decoded_once() -> None:
    sink = Sink()
    stream = LineStream("stderr", sink)
    encoded = "naïve €\n".encode()
    for index in range(len(encoded)):
        stream.feed(encoded[index : index + 1])
    stream.close()
    assert stream.text() == "naïve €\n"
    assert [data for _, data in sink.calls] == ["naïve €\n"]


def test_a_very_long_line_goes_to_the_sink_in_pieces() -> None:
    sink = Sink()
    stream = LineStream("stdout", sink)
    stream.feed(b"x" * (MAX_LINE_BYTES * 2 + 10) + b"\n")
    stream.close()
    sizes = [len(data) for _, data in sink.calls]
    assert sizes == [MAX_LINE_BYTES, MAX_LINE_BYTES, 11]
    assert len(stream.text()) == MAX_LINE_BYTES * 2 + 11


def test_keep_drops_lines_from_the_sink_and_the_text() -> None:
    sink = Sink()
    stream = LineStream("stderr", sink, keep=lambda line: not line.startswith("secret"))
    stream.feed(b"one\nsecret 42\ntwo\n")
    stream.close()
    assert stream.text() == "one\ntwo\n"
    assert [data for _, data in sink.calls] == ["one\n", "two\n"]


def test_a_large_output_is_kept_as_its_utf8_and_decodes_to_the_text_received() -> None:
    sink = Sink()
    stream = LineStream("stdout", sink)
    lines = [f'{number:06d} "quoted" \\ tab\there é 日本 🙂\n' for number in range(3000)]
    encoded = "".join(lines).encode()
    for start in range(0, len(encoded), 1000):
        stream.feed(encoded[start : start + 1000])
    stream.close()
    kept = stream.result_text()
    assert isinstance(kept, EncodedText)
    assert len(encoded) >= ENCODED_TEXT_BYTES
    assert bytes(kept.data) == encoded
    assert str(kept) == stream.text() == "".join(lines)
    assert [data for _, data in sink.calls] == lines


def test_small_output_is_kept_as_str_and_invalid_bytes_are_replaced_in_both() -> None:
    stream = LineStream("stdout", Sink())
    stream.feed(b"ok \xff\n")
    stream.close()
    assert stream.result_text() == "ok \ufffd\n"
    big = LineStream("stdout", Sink())
    big.feed(b"\xff" * ENCODED_TEXT_BYTES)
    big.close()
    assert str(big.result_text()) == "\ufffd" * ENCODED_TEXT_BYTES
