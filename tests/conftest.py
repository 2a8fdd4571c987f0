"""Shared fixtures: every test writes under its own ECOM_HOME and no tool phones home."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from pipelines.config import TELEMETRY_OFF, Settings, load_settings

for _key, _value in TELEMETRY_OFF.items():
    os.environ[_key] = _value

START = dt.date(2024, 1, 1)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings rooted in a fresh ECOM_HOME, also exported for code that reads the environment."""
    monkeypatch.setenv("ECOM_HOME", str(tmp_path))
    return load_settings({"ECOM_HOME": str(tmp_path)})


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny tier generated once per session: ``<root>/data/generated`` and ``<root>/data/truth``."""
    from pipelines.data.generate import generate_world

    root = tmp_path_factory.mktemp("tiny_world")
    generate_world("tiny", 7, START, root / "data" / "generated", root / "data" / "truth")
    return root
