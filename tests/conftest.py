"""Shared fixtures: a tiny phantom data set, and the real data from ../shared when present."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ACDC = SHARED / "acdc"
HIPPO = SHARED / "msd_hippocampus"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (tests on the phantom still run)")
    return path


@pytest.fixture
def acdc_dir() -> Path:
    return need(ACDC)


@pytest.fixture
def hippo_dir() -> Path:
    return need(HIPPO)


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory) -> Path:
    """The phantom written to disk by the command line (4 subjects, ED + ES)."""
    from medkit.cli import main
    out = tmp_path_factory.mktemp("phantom") / "data"
    assert main(["phantom", str(out), "--cases", "4", "--seed", "3", "--size", "64"]) == 0
    return out
