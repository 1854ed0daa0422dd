"""Run a command on a pseudo-terminal and answer its prompts, as a person at a shell would."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class TerminalSession:
    returncode: int
    # Everything the terminal showed: prompts, messages and whatever the command echoed.
    screen: str


def run_on_terminal(
    command: Sequence[str],
    answers: Sequence[tuple[str, str]],
    *,
    env: dict[str, str],
    timeout: float = 120,
) -> TerminalSession:
    """Run ``command`` with a pty as its terminal; for each (prompt, answer), wait until the
    screen shows ``prompt`` and type ``answer`` and Enter. Fails if a prompt never appears."""
    leader, follower = os.openpty()
    process = subprocess.Popen(
        list(command),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + timeout
    pending = list(answers)
    seen = 0
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the command ended and closed its side
                    chunk = b""
                if not chunk and process.poll() is not None:
                    break
                screen += chunk
            elif process.poll() is not None:
                break
            if pending and pending[0][0].encode() in screen[seen:]:
                prompt, answer = pending.pop(0)
                seen = screen.index(prompt.encode(), seen) + len(prompt)
                os.write(leader, answer.encode() + b"\n")
            assert time.monotonic() < deadline, f"no end after {timeout}s: {screen!r}"
        assert not pending, f"never asked {pending[0][0]!r}: {screen!r}"
        return TerminalSession(process.wait(timeout=30), screen.decode(errors="replace"))
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
