"""Process output as it arrives: split into lines for the sink, and kept whole for the result.

What is kept is the decoded text's UTF-8, so a large output costs one byte per ASCII character
whatever else it holds (a ``str`` with one emoji takes four bytes per character).
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable

from poundcake.engine.executions.results import ENCODED_TEXT_BYTES, EncodedText
from poundcake.engine.runners.base import OutputSink

MAX_LINE_BYTES = 64 * 1024
"""A line longer than this goes to the sink in pieces of this size."""


class SerializedSink:
    """Wraps a sink so reader threads hand it one line at a time."""

    def __init__(self, sink: OutputSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()

    def __call__(self, output_type: str, data: str) -> None:
        with self._lock:
            self._sink(output_type, data)


class LineStream:
    """One output stream: bytes in, decoded lines out to the sink, and the whole text kept.

    ``keep``, when given, sees each line first and can drop it from both.
    """

    def __init__(
        self, output_type: str, sink: OutputSink, keep: Callable[[str], bool] | None = None
    ) -> None:
        self.output_type = output_type
        self._sink = sink
        self._keep = keep
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = bytearray()
        self._kept = bytearray()
        self._closed = False

    def feed(self, data: bytes) -> None:
        """Take a chunk of output and pass every complete line on."""
        self._pending += data
        start = 0
        while True:
            end = self._pending.find(b"\n", start, start + MAX_LINE_BYTES)
            if end != -1:
                self._emit(bytes(self._pending[start : end + 1]))
                start = end + 1
            elif len(self._pending) - start >= MAX_LINE_BYTES:
                self._emit(bytes(self._pending[start : start + MAX_LINE_BYTES]))
                start += MAX_LINE_BYTES
            else:
                break
        del self._pending[:start]

    def close(self) -> None:
        """Pass on whatever is left after the stream ended."""
        if self._pending:
            self._emit(bytes(self._pending))
            self._pending.clear()
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._kept += tail.encode()
            self._sink(self.output_type, tail)
        self._closed = True

    def text(self) -> str:
        """Return everything received so far."""
        return self._kept.decode()

    def result_text(self) -> str | EncodedText:
        """Everything received so far: as :class:`EncodedText` when it is large (sharing the
        buffer once the stream is closed, a copy while a reader may still be adding to it)."""
        if len(self._kept) < ENCODED_TEXT_BYTES:
            return self.text()
        return EncodedText(self._kept if self._closed else bytes(self._kept))

    def _emit(self, line: bytes) -> None:
        text = self._decoder.decode(line)
        if text and (self._keep is None or self._keep(text)):
            self._kept += text.encode()
            self._sink(self.output_type, text)
