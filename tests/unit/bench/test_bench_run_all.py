"""bench/run_all.py's previous figures: kept per benchmark, shown beside the new ones."""

from __future__ import annotations

import json
from pathlib import Path

from bench.run_all import before, load_previous, save_figures


def row(benchmark: str, figure: str, value: float, quick: bool = False) -> dict[str, object]:
    return {"benchmark": benchmark, "figure": figure, "value": value, "unit": "ms", "quick": quick}


def test_no_previous_file_means_no_previous_figures(tmp_path: Path) -> None:
    assert load_previous(tmp_path / "absent.json") == {}
    assert load_previous(None) == {}
    assert before({}, "intake", {"figure": "p99", "unit": "ms"}) == "-"


def test_saving_replaces_the_benchmarks_run_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "figures.json"
    save_figures(path, {}, [row("intake", "p99", 40.0), row("api_list", "p99 list", 20.0)])
    save_figures(path, load_previous(path), [row("intake", "p50", 5.0, quick=True)])
    saved = load_previous(path)
    assert set(saved) == {("api_list", "p99 list"), ("intake", "p50")}
    assert before(saved, "intake", {"figure": "p50", "unit": "ms"}) == "5 ms (quick)"
    assert before(saved, "api_list", {"figure": "p99 list", "unit": "ms"}) == "20 ms"
    assert isinstance(json.loads(path.read_text()), list)
