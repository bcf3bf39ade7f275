"""Run folders shared by processes: a second writer of the same folder waits for the first."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from medkit.engine.runs import exclusive

HOLDER = """
import sys, time
from pathlib import Path
from medkit.engine.runs import exclusive
out, flag = Path(sys.argv[1]), Path(sys.argv[2])
with exclusive(out):
    flag.write_text("held")
    time.sleep(1.5)
    flag.write_text("released")
"""


def test_exclusive_makes_a_second_process_wait(tmp_path):
    out, flag = tmp_path / "baseline", tmp_path / "flag"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), str(flag)], cwd=root)
    try:
        deadline = time.time() + 60
        while not flag.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert flag.read_text() == "held"
        with exclusive(tmp_path / "other"):  # another folder is not held
            assert flag.read_text() == "held"
        with exclusive(tmp_path / "." / "baseline"):  # the same folder, spelt differently: waits
            assert flag.read_text() == "released"
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flag"]  # nothing written beside the run
