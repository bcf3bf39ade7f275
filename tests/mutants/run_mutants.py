"""Mutation check of the paired statistics: every patch in this folder must make tests/eval fail.

Each ``*.patch`` here is a small unified diff against ``medkit/eval/*.py`` (a plausible mistake:
a percentile interval, a 90 % level, no Holm adjustment, ...). medkit/, tests/ and pyproject.toml
are copied once to a temporary folder (a snapshot: later edits of the working tree do not mix in);
for each patch a copy of that snapshot is patched with ``git apply`` and
``python -m pytest -q -x tests/eval`` runs on it: KILLED when a test fails (the first one is
named), SURVIVED when all pass. The unpatched snapshot runs first; a test that already fails
without any mutant (someone else's change in progress) is deselected, so it cannot kill one. The
working tree is never modified.

Usage: ``make mutants``, or ``.venv/bin/python tests/mutants/run_mutants.py [NAME ...]``.
Exit status 0 when every mutant is killed, 1 otherwise (a survivor, a patch that no longer
applies, or a broken baseline).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/eval"]


def copy_repo(dest: Path, source: Path = ROOT) -> Path:
    """medkit/, tests/ and pyproject.toml of ``source`` (default: the working tree), copied to ``dest``."""
    skip = shutil.ignore_patterns("__pycache__", ".pytest_cache", "output")
    for folder in ("medkit", "tests"):
        shutil.copytree(source / folder, dest / folder, ignore=skip)
    shutil.copy2(source / "pyproject.toml", dest / "pyproject.toml")
    return dest


def run_tests(copy: Path, deselect: list[str]) -> tuple[int, str]:
    """pytest on tests/eval of ``copy``, importing medkit from the copy: (exit status, output)."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "MPLBACKEND": "Agg"}
    where = subprocess.run([sys.executable, "-c", "import medkit; print(medkit.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True)
    if not where.stdout.strip().startswith(str(copy)):
        raise SystemExit(f"medkit is imported from {where.stdout.strip() or where.stderr}, not from the copy {copy}")
    args = PYTEST + [a for t in deselect for a in ("--deselect", t)]
    done = subprocess.run(args, cwd=copy, env=env, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def failures(output: str) -> list[str]:
    """The test ids pytest's summary lists as FAILED or ERROR."""
    return re.findall(r"^(?:FAILED|ERROR) (\S+)", output, flags=re.M)


def baseline(snapshot: Path) -> list[str] | None:
    """Tests of tests/eval that fail without a mutant (None when pytest itself cannot run)."""
    failed: list[str] = []
    status, output = run_tests(snapshot, failed)
    while status == 1:  # -x stops at the first failure: deselect it and go on
        new = [f for f in failures(output) if f not in failed]
        if not new:
            return None
        failed += new
        status, output = run_tests(snapshot, failed)
    return failed if status == 0 else None


def try_mutant(patch: Path, snapshot: Path, deselect: list[str]) -> tuple[str, str]:
    """(KILLED | SURVIVED | NOT APPLIED, the first failing test or the reason)."""
    copy = copy_repo(snapshot.parent / patch.stem, snapshot)
    applied = subprocess.run(["git", "apply", str(patch)], cwd=copy, capture_output=True, text=True)
    if applied.returncode != 0:
        return "NOT APPLIED", applied.stderr.strip().splitlines()[0] if applied.stderr.strip() else "git apply failed"
    status, output = run_tests(copy, deselect)
    if status == 0:
        return "SURVIVED", "every test in tests/eval passed"
    first = failures(output)
    return "KILLED", first[0] if first else f"pytest exit status {status}: {output.strip().splitlines()[-1]}"


def main(names: list[str]) -> int:
    patches = [p for p in sorted(HERE.glob("*.patch")) if not names or p.stem in names]
    if not patches:
        print(f"no mutant named {', '.join(names)} in {HERE}")
        return 1
    width, bad = max(len(p.stem) for p in patches), []
    with tempfile.TemporaryDirectory(prefix="medkit-mutants-") as tmp:
        snapshot = copy_repo(Path(tmp) / "snapshot")
        failing = baseline(snapshot)
        if failing is None:
            print("tests/eval does not run without a mutant: fix that first")
            return 1
        for test in failing:
            print(f"deselected (fails without a mutant): {test}")
        for patch in patches:
            verdict, why = try_mutant(patch, snapshot, failing)
            print(f"{patch.stem:<{width}}  {verdict:<11}  {why}", flush=True)
            bad += [patch.stem] if verdict != "KILLED" else []
    print(f"{len(patches) - len(bad)} of {len(patches)} mutants killed" + (f"; not killed: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
