"""The layers of medkit hold: import-linter's contracts in pyproject.toml, and the package's top level."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
lint = pytest.importorskip("importlinter.cli", reason="import-linter is in requirements.txt").lint_imports


def test_every_import_contract_is_kept(capsys):
    code = lint_imports_quietly(str(ROOT / "pyproject.toml"))
    assert code == 0, capsys.readouterr().out[-3000:]


def test_a_forbidden_import_breaks_the_check(tmp_path, monkeypatch):
    """The check can fail: a contract that the code does break (data imports medkit.errors) is reported."""
    (tmp_path / "broken.toml").write_text(
        '[tool.importlinter]\nroot_package = "medkit"\n\n[[tool.importlinter.contracts]]\n'
        'name = "data may not import errors"\ntype = "forbidden"\nsource_modules = ["medkit.data"]\n'
        'forbidden_modules = ["medkit.errors"]\n')
    monkeypatch.chdir(ROOT)
    assert lint_imports_quietly(str(tmp_path / "broken.toml")) == 1


def lint_imports_quietly(config: str) -> int:
    return lint(config_filename=config, no_cache=True, no_logo=True)


def test_top_level_holds_only_packages_and_the_entry_points():
    top = {p.name for p in (ROOT / "medkit").iterdir() if p.name != "__pycache__"}
    files = {n for n in top if n.endswith(".py")}
    assert files == {"__init__.py", "__main__.py", "cli.py", "errors.py"}, files
    assert all((ROOT / "medkit" / n / "__init__.py").exists() for n in top - files), top - files


def test_tests_mirror_the_package():
    packages = {p.name for p in (ROOT / "medkit").iterdir() if (p / "__init__.py").exists()}
    missing = {p for p in packages if not (ROOT / "tests" / p).is_dir()}
    assert not missing, missing
