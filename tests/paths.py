"""Where the tests find the repository and its fixture packs, wherever a test module sits."""

from __future__ import annotations

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
FIXTURE_PACKS = REPOSITORY / "tests" / "fixtures" / "packs"
