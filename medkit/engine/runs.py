"""Run folders: one folder per run holds its parameters, history, checkpoints and metrics.

Files are written atomically (temporary file + ``os.replace``), so a run killed at any moment
leaves either the old or the new version, never half a file. An existing run folder is never
overwritten: it is resumed when its parameters match, and refused otherwise.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from medkit.errors import MedkitError


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN and Inf become None, tuples become lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def atomic_write_bytes(path: Path, write) -> None:
    """Write through ``write(fileobj)`` into a temporary file beside ``path``, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    data = json.dumps(_clean(obj), indent=2, sort_keys=False).encode()
    atomic_write_bytes(Path(path), lambda f: f.write(data))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def open_run(out: str | Path, params: dict, resume: bool = False) -> Path:
    """Create a run folder, or reopen it to resume.

    Args:
        out: the folder.
        params: the run's parameters, written to ``params.json``.
        resume: allow an existing folder whose ``params.json`` matches ``params``.

    Raises:
        MedkitError: the folder exists and ``resume`` is off, or its parameters differ.
    """
    out = Path(out)
    pfile = out / "params.json"
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise MedkitError(f"{out}: run folder exists and is not empty; pass --resume to continue "
                              f"it, or choose another --out (nothing was changed)")
        if not pfile.exists():
            raise MedkitError(f"{out}: not a medkit run folder (no params.json); nothing was changed")
        old = read_json(pfile)
        new = _clean(params)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
            raise MedkitError(f"{out}: cannot resume, parameters differ ({shown}); choose another --out")
        return out
    if out.exists() and not out.is_dir():
        raise MedkitError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    write_json(pfile, params)
    return out


def save_figure(fig, run_dir: str | Path | None, name: str) -> Path | None:
    """Save a figure as ``RUN_DIR/figures/<name>.png``; an empty ``run_dir`` writes nothing."""
    if not run_dir:
        return None
    path = Path(run_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
