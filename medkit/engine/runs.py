"""Run folders: one folder per run holds its parameters, history, checkpoints and metrics.

Files are written atomically (temporary file + ``os.replace``), so a run killed at any moment
leaves either the old or the new version, never half a file. An existing run folder is never
overwritten: it is resumed when its parameters match, and refused otherwise.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from medkit.errors import MedkitError, check_schema, one_line


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN and Inf become None, tuples become lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


TMP_SUFFIX = ".tmp"  # a temporary file of an atomic write: ".<name>.<random>.tmp" beside its target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files that writes killed in mid-flight left under ``folder``
    (a finished write has renamed its own); returns them."""
    stale = [p for p in Path(folder).rglob(f".*{TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def atomic_write_bytes(path: Path, write) -> None:
    """Write through ``write(fileobj)`` into a temporary file beside ``path``, then rename; an OS
    error (no space left, permission) names ``path`` and leaves the old file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would create it (mkstemp's is 0600): the umask decides
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not e.filename:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    data = json.dumps(_clean(obj), indent=2, sort_keys=False).encode()
    atomic_write_bytes(Path(path), lambda f: f.write(data))


def check_below_folder(out: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output path whose nearest existing ancestor is a file."""
    out = Path(out)
    parent = next(p for p in out.parents if p.exists())
    if not parent.is_dir():
        raise MedkitError(f"{option} {out}: {parent} is a file, not a folder")
    return out


def read_json(path: Path, schema: dict | None = None) -> Any:
    """The JSON document at ``path``, checked against ``schema`` when given
    (:func:`~medkit.errors.check_schema`); a damaged file is a one-line MedkitError naming it."""
    try:
        obj = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MedkitError(f"{path}: damaged, not valid JSON ({one_line(e)})") from None
    return check_schema(obj, schema, str(path)) if schema is not None else obj


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
    if out.exists() and not out.is_dir():
        raise MedkitError(f"{out}: exists and is not a folder; choose another out=FOLDER")
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise MedkitError(f"{out}: run folder exists and is not empty; pass resume=True to continue "
                              f"it, or choose another out=FOLDER (nothing was changed)")
        if not pfile.exists():
            raise MedkitError(f"{out}: not a medkit run folder (no params.json); nothing was changed")
        old = read_json(pfile, {"type": "object", "description": "a JSON object of run parameters"})
        new = _clean(params)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
            raise MedkitError(f"{out}: cannot resume, parameters differ ({shown}); choose another out=FOLDER")
        remove_stale_temporaries(out)
        return out
    out.mkdir(parents=True, exist_ok=True)
    write_json(pfile, params)
    return out


@contextmanager
def removed_on_failure(out: str | Path, remove: bool = True) -> Iterator[Path]:
    """For the body of a ``with`` that writes folder ``out``: when the body fails with a user's
    mistake (MedkitError) or an OS error (no space left, permission), what it created is removed
    again (the first folder of ``out``'s path that did not exist; an empty ``out`` is emptied
    again), so that the corrected command starts clean. An interruption keeps everything.

    Args:
        remove: whether this process removes (one process of several does).
    """
    out = Path(out)
    first_new = next((p for p in [*reversed(out.parents), out] if not p.exists()), None)
    was_empty = out.is_dir() and not any(out.iterdir())
    try:
        yield out
    except (MedkitError, OSError):
        if remove and first_new is not None:
            shutil.rmtree(first_new, ignore_errors=True)
        elif remove and was_empty:
            for p in out.iterdir():
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink()
        raise


@contextmanager
def exclusive(out: str | Path) -> Iterator[None]:
    """One process at a time in run folder ``out``: a second process that resumes the same folder
    (two studies run side by side sharing a random-initialisation baseline) waits here until the
    first is done, then reads back what it finished instead of racing it. The lock is an advisory
    ``flock`` on a file in the system's temporary folder named after ``out``'s absolute path, so
    nothing is written beside the run; where ``fcntl`` is missing (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    key = hashlib.sha1(str(Path(out).resolve()).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "medkit-locks"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{key}.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{out}: another process is writing this run folder; waiting for it", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def new_run(out: str | Path, params: dict, resume: bool = False,
            opener: Callable[[Path, dict, bool], Path] | None = None, remove: bool = True) -> Iterator[Path]:
    """:func:`open_run` for the body of a ``with``, :func:`removed_on_failure`: a run folder that
    this call created is removed again when the body fails (a resumed one keeps everything).

    Args:
        opener: opens the folder instead of :func:`open_run` (e.g. in the main process only).
        remove: whether this process removes the folder on failure (one process of several does).
    """
    with removed_on_failure(out, remove):
        yield (opener or (lambda o, p, r: open_run(o, p, resume=r)))(Path(out), params, resume)


def save_figure(fig, run_dir: str | Path | None, name: str) -> Path | None:
    """Save a figure as ``RUN_DIR/figures/<name>.png``; an empty ``run_dir`` writes nothing."""
    if not run_dir:
        return None
    path = Path(run_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
