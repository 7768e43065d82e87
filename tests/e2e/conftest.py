"""Fixtures for the end-to-end tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short on purpose: the embedded server's unix socket lives here (sun_path is 108 bytes).
    path = Path(tempfile.mkdtemp(prefix="r-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
