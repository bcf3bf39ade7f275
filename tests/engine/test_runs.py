"""Run folders shared by processes: a second writer of the same folder waits for the first.

No sleeps: the processes hand over through pipes. The holder says when it holds the lock and
releases it only when told; the waiter says (through :func:`exclusive`'s own message) when it is
blocked, and what it finds once it gets in."""
from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

from medkit.engine.runs import exclusive

HOLDER = """
import sys
from pathlib import Path
from medkit.engine.runs import exclusive
out, flag = Path(sys.argv[1]), Path(sys.argv[2])
with exclusive(out):
    flag.write_text("held")
    print("held", flush=True)
    sys.stdin.readline()  # until the test says: release
    flag.write_text("released")
"""
WAITER = """
import sys
from pathlib import Path
from medkit.engine.runs import exclusive
out, flag = Path(sys.argv[1]), Path(sys.argv[2])
with exclusive(out):
    print("entered:", flag.read_text(), flush=True)
"""


def _start(code: str, *args: Path) -> subprocess.Popen:
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=root, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _line(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The next line the process writes (a dead or silent process fails the test, never hangs it)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no answer from the child process"
    return proc.stdout.readline().strip()


def test_exclusive_makes_a_second_process_wait(tmp_path):
    out, flag = tmp_path / "baseline", tmp_path / "flag"
    holder = _start(HOLDER, out, flag)
    waiter = None
    try:
        assert _line(holder) == "held"
        with exclusive(tmp_path / "other"):  # another folder is not held
            assert flag.read_text() == "held"
        waiter = _start(WAITER, tmp_path / "." / "baseline", flag)  # the same folder, spelt differently
        assert _line(waiter).endswith("another process is writing this run folder; waiting for it")
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert _line(waiter) == "entered: released"  # it got in only after the holder let go
    finally:
        for proc in (holder, waiter):
            if proc is not None:
                proc.stdin.close()
                proc.wait(timeout=60)
    assert holder.returncode == 0 and waiter.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flag"]  # nothing written beside the run
