"""Every bench still imports against the current code (they run by hand, not in CI)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHES = sorted(
    p.stem for p in (Path(__file__).parents[1] / "bench").glob("*.py") if p.stem[0] != "_"
)


@pytest.mark.parametrize("name", BENCHES)
def test_bench_imports(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert callable(module.main)
