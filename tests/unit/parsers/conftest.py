"""Shared helpers for the parser tests: fixture files live in tests/fixtures/."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def fixture_text():
    """Return a function that reads a fixture file as text."""

    def read(name: str) -> str:
        return (FIXTURES / name).read_text(encoding="utf-8")

    return read


@pytest.fixture
def fixture_bytes():
    """Return a function that reads a fixture file as bytes."""

    def read(name: str) -> bytes:
        return (FIXTURES / name).read_bytes()

    return read
