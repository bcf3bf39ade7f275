"""A battery of bad inputs and faults across every command.

Each case runs the command line as a user would (``medkit.cli.main``, library warnings shown on
stderr as Python shows them) and asserts: exit code 2, exactly one line on stderr of the form
``medkit COMMAND: error: ...`` that names the culprit (a regular expression per case), no
traceback, and that nothing already written changed (every file under the case's folder and the
shared world of finished runs has the same bytes and mode, and no file or folder appeared).
Faults (no space left, permission denied) are injected with monkeypatch; the process runs as root
in CI, where a read-only folder would not stop a write.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from medkit.cli import main

NB = str(Path(__file__).parent / "fixtures" / "tiny_study.ipynb")


@dataclass(frozen=True)
class Case:
    name: str
    argv: str  # split on spaces after formatting: {c} the case's folder, {data} {pre} {sup} {sup2} the world
    culprit: str  # a regular expression the one error line must match
    setup: Callable[[Path, dict], None] | None = None  # writes into the case's folder before the snapshot
    fault: Callable[[pytest.MonkeyPatch, Path], None] | None = None  # injected after the snapshot


# ---- setups: what a case finds on disk ------------------------------------------------------------

def _write(rel: str, text: str | bytes) -> Callable[[Path, dict], None]:
    def setup(c: Path, w: dict) -> None:
        p = c / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text) if isinstance(text, bytes) else p.write_text(text)
    return setup


def _copy_data(c: Path, w: dict) -> Path:
    shutil.copytree(w["data"], c / "data")
    return c / "data"


def _dataset(doc) -> Callable[[Path, dict], None]:
    """A copy of the phantom folder whose dataset.json is ``doc`` (a JSON value, or raw text)."""
    def setup(c: Path, w: dict) -> None:
        d = _copy_data(c, w)
        (d / "dataset.json").write_bytes(doc if isinstance(doc, bytes) else
                                         (doc if isinstance(doc, str) else json.dumps(doc)).encode())
    return setup


def _nifti(kind: str, how: str) -> Callable[[Path, dict], None]:
    """A copy of the phantom folder with its first image or label file spoiled."""
    def setup(c: Path, w: dict) -> None:
        import nibabel as nib
        import numpy as np
        d = _copy_data(c, w)
        f = sorted((d / kind).glob("*.nii.gz"))[0]
        arr = np.asarray(nib.load(str(f)).dataobj)
        if how == "missing":
            f.unlink()
        elif how == "bytes":
            f.write_bytes(os.urandom(300))
        else:
            new = {"nan": np.full(arr.shape, np.nan, np.float32), "shape": np.zeros((5, 5, 5), np.uint8),
                   "half": arr + 0.5, "values": arr * 7, "4d": np.zeros((4, 4, 4, 2), np.float32)}[how]
            nib.save(nib.Nifti1Image(new, np.eye(4)), str(f))
    return setup


def _run_copy(src: str, name: str, edit: Callable[[Path], None] | None = None) -> Callable[[Path, dict], None]:
    """A copy of a finished world run as ``{c}/name``, then ``edit(run)``."""
    def setup(c: Path, w: dict) -> None:
        shutil.copytree(w[src], c / name)
        if edit is not None:
            edit(c / name)
    return setup


def _params(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        p = json.loads((run / "params.json").read_text())
        change(p)
        (run / "params.json").write_text(json.dumps(p))
    return edit


def _text(rel: str, text: str | bytes) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        (run / rel).write_bytes(text) if isinstance(text, bytes) else (run / rel).write_text(text)
    return edit


def _torch(rel: str, obj) -> Callable[[Path], None]:
    return lambda run: torch.save(obj, run / rel)


class _Evil:
    """A pickle that would run a shell command when unpickled (it must never be)."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/medkit_pwned",))


def _evil(rel: str) -> Callable[[Path], None]:
    return lambda run: torch.save({"model": _Evil()}, run / rel)  # pickles os.system into the file


def _study(text: str) -> Callable[[Path, dict], None]:
    return _write("s.yaml", text.replace("NB", NB))


def _finished_study(c: Path, w: dict) -> None:
    """A study run folder finished with X = 1; the study file now says X = 2."""
    (c / "s.yaml").write_text(f"name: s\nnotebooks: [{NB}]\nbase: {{X: 2}}\n")
    run = c / "root" / "s" / "tiny_study"
    run.mkdir(parents=True)
    (run / "done.json").write_text('{"status": "done"}')
    (run / "study_params.json").write_text(json.dumps({"notebook": NB, "parameters": {"X": 1}}))


# ---- faults --------------------------------------------------------------------------------------

def _no_space(where: str) -> Callable[[pytest.MonkeyPatch, Path], None]:
    """Every atomic write of a file named ``where`` fails as a full disk would."""
    def fault(mp: pytest.MonkeyPatch, c: Path) -> None:
        import medkit.engine.runs as runs
        real = runs.os.fsync

        def fsync(fd):
            if where in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd)
        mp.setattr(runs.os, "fsync", fsync)
    return fault


def _no_space_nifti(mp: pytest.MonkeyPatch, c: Path) -> None:
    import nibabel as nib
    real = nib.save
    calls = []

    def save(img, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(img, path)
    mp.setattr(nib, "save", save)


def _denied(mp: pytest.MonkeyPatch, c: Path) -> None:
    """Folders under the case's ``locked`` cannot be created (root ignores a chmod)."""
    real = Path.mkdir

    def mkdir(self, *a, **k):
        if "locked" in str(self):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *a, **k)
    mp.setattr(Path, "mkdir", mkdir)


# ---- the cases -----------------------------------------------------------------------------------

# the world's runs are made by these same commands, so that a resumed copy has the same parameters
SUP = ("supervised --data {data} --out {c}/run --steps 2 --labelled 1 --image-size 64 --batch-size 4 "
       "--val-every 0 --quiet")

PRE = "pretrain --method simclr --data {data} --out {c}/run --steps 2 --batch-size 4 --image-size 64 --quiet"
EVAL = "evaluate --data {data} --out {c}/run --steps 2 --labelled 1 --image-size 64 --quiet"
DX = "diagnose --data {data} --out {c}/dx --max-n 16"
CAL = ("calibrate --real {data} --out {c}/cal --steps 2 --labelled 1 --image-size 64 --batch-size 4 --val-every 0 "
       "--quiet")
CASES = [
    # phantom
    Case("phantom size 0", "phantom {c}/p --size 0", "--size must be at least 32"),
    Case("phantom size negative", "phantom {c}/p --size -5", "--size must be at least 32"),
    Case("phantom size too small", "phantom {c}/p --size 16", "--size must be at least 32 pixels .* got 16"),
    Case("phantom size not a number", "phantom {c}/p --size big", "--size: invalid int value: 'big'"),
    Case("phantom cases 0", "phantom {c}/p --cases 0", "--cases must be at least 1"),
    Case("phantom frames unknown", "phantom {c}/p --frames mid", "--frames: invalid choice: 'mid'"),
    Case("phantom dir is a file", "phantom {c}/f", "f: exists and is not an empty folder", _write("f", "keep")),
    Case("phantom dir not empty", "phantom {c}/p", "p: exists and is not an empty folder", _write("p/x", "keep")),
    Case("phantom dir below a file", "phantom {c}/f/p", "f is a file, not a folder", _write("f", "keep")),
    Case("phantom no space left", "phantom {c}/p --cases 2 --size 32", "No space left on device",
         fault=_no_space_nifti),
    Case("phantom permission denied", "phantom {c}/locked/p --cases 1 --size 32", "locked.*Permission denied",
         fault=_denied),
    # data-check
    Case("data-check missing folder", "data-check {c}/nope", "nope: no such data folder"),
    Case("data-check folder is a file", "data-check {c}/f", "f: not a folder", _write("f", "x")),
    Case("data-check empty folder", "data-check {c}/e", "neither dataset.json nor imagesTr", _write("e/.keep", "")),
    Case("data-check json broken", "data-check {c}/data", r"dataset.json: not valid JSON", _dataset("{")),
    Case("data-check json binary", "data-check {c}/data", r"dataset.json: not valid JSON", _dataset(b"\xff\xfe{")),
    Case("data-check json list", "data-check {c}/data", "the document: must be a JSON object", _dataset([1, 2])),
    Case("data-check json number", "data-check {c}/data", "the document: must be a JSON object", _dataset(5)),
    Case("data-check training number", "data-check {c}/data", "training: must be a list", _dataset({"training": 5})),
    Case("data-check training string", "data-check {c}/data", "training: must be a list",
         _dataset({"training": "all"})),
    Case("data-check entry string", "data-check {c}/data", r"training\[0\]: must be an .* object, got 'a.nii'",
         _dataset({"training": ["a.nii"]})),
    Case("data-check image number", "data-check {c}/data", r"training\[0\]\.image: must be a non-empty path, got 5",
         _dataset({"training": [{"image": 5}]})),
    Case("data-check image empty", "data-check {c}/data", r"training\[0\]\.image: must be a non-empty path",
         _dataset({"training": [{"image": ""}]})),
    Case("data-check image missing", "data-check {c}/data", r"training\[0\]: 'image' is a required property",
         _dataset({"training": [{"label": "x.nii.gz"}]})),
    Case("data-check label number", "data-check {c}/data", r"training\[0\]\.label: must be a path or null, got 3",
         _dataset({"training": [{"image": "a.nii.gz", "label": 3}]})),
    Case("data-check labels list", "data-check {c}/data", "labels: must be a mapping",
         _dataset({"labels": [1], "training": []})),
    Case("data-check labels key", "data-check {c}/data", "labels: must be an integer label value, got 'lv'",
         _dataset({"labels": {"lv": "left"}, "training": []})),
    Case("data-check labels value", "data-check {c}/data", r"labels\.1: must be a label name \(a string\), got 2",
         _dataset({"labels": {"1": 2}, "training": []})),
    Case("data-check numTraining", "data-check {c}/data", "numTraining: must be a count",
         _dataset({"numTraining": "ten", "training": []})),
    Case("data-check empty list", "data-check {c}/data", "the data set is empty", _dataset({"training": []})),
    # supervised: data
    Case("supervised data missing", "supervised --data {c}/nope --out {c}/run", "nope: no such folder"),
    Case("supervised data is a file", "supervised --data {c}/f --out {c}/run", "f: not a folder", _write("f", "x")),
    Case("supervised json list", SUP.replace("{data}", "{c}/data"), "must be a JSON object", _dataset([1])),
    Case("supervised training number", SUP.replace("{data}", "{c}/data"), "training: must be a list",
         _dataset({"training": 5})),
    Case("supervised image number", SUP.replace("{data}", "{c}/data"), r"training\[0\]\.image",
         _dataset({"training": [{"image": 5}]})),
    Case("supervised image file missing", SUP.replace("{data}", "{c}/data"), "file not found",
         _nifti("imagesTr", "missing")),
    Case("supervised label file missing", SUP.replace("{data}", "{c}/data"), "file not found",
         _nifti("labelsTr", "missing")),
    Case("supervised image random bytes", SUP.replace("{data}", "{c}/data"), "cannot be read as NIfTI",
         _nifti("imagesTr", "bytes")),
    Case("supervised image nan", SUP.replace("{data}", "{c}/data"), "NaN or Inf", _nifti("imagesTr", "nan")),
    Case("supervised image 4d", SUP.replace("{data}", "{c}/data"), "expected a 3D volume", _nifti("imagesTr", "4d")),
    Case("supervised label shape", SUP.replace("{data}", "{c}/data"), "does not match image shape",
         _nifti("labelsTr", "shape")),
    Case("supervised label fractions", SUP.replace("{data}", "{c}/data"), "label values must be integers",
         _nifti("labelsTr", "half")),
    Case("supervised label unknown values", SUP.replace("{data}", "{c}/data"), "unexpected label values",
         _nifti("labelsTr", "values")),
    # supervised: options
    Case("supervised labelled zero", SUP + " --labelled 0", "--labelled takes .* got '0'"),
    Case("supervised labelled word", SUP + " --labelled one", "--labelled takes .* got 'one'"),
    Case("supervised labelled too many", SUP + " --labelled 400", "--labelled 400: only"),
    Case("supervised combos zero", SUP + " --combos 0", "--combos must be a positive number"),
    Case("supervised combos negative", SUP + " --combos -1", "--combos must be a positive number"),
    Case("supervised combos too many", SUP + " --combos 100000", "--combos: only"),
    Case("supervised seeds word", SUP + " --seeds a", "--seeds takes an integer, got 'a'"),
    Case("supervised seeds repeated", SUP + " --seeds 1,1", "--seeds takes distinct"),
    Case("supervised steps zero", SUP + " --steps 0", "steps must be at least 1, got 0"),
    Case("supervised batch zero", SUP + " --batch-size 0", "--batch-size must be at least 1, got 0"),
    Case("supervised lr negative", SUP + " --lr -1", "lr must be a positive number, got -1"),
    Case("supervised lr nan", SUP + " --lr nan", "lr must be a positive number, got nan"),
    Case("supervised head lr zero", SUP + " --head-lr 0", "--head-lr must be a positive number"),
    Case("supervised warmup too long", SUP + " --warmup 5", "warmup must be .* fewer than the 2 steps"),
    Case("supervised val every negative", SUP + " --val-every -1", "--val-every must be 0"),
    Case("supervised device tpu", SUP + " --device tpu", "--device must be auto, cpu or cuda"),
    Case("supervised device cuda", SUP + " --device cuda", "--device cuda: CUDA is not available"),
    Case("supervised image size 33", SUP + " --image-size 33",
         "--image-size must be a positive multiple of 32 .* got 33"),
    Case("supervised image size 0", SUP + " --image-size 0", "--image-size must be a positive multiple of 32 .* got 0"),
    Case("supervised crop word", SUP + " --crop big", "--crop takes an integer, got 'big'"),
    Case("supervised crop tiny", SUP + " --crop 4", "--crop must be at least 16"),
    Case("supervised model unknown", SUP + " --model vit", "--model 'vit' is not known"),
    Case("supervised split unknown", SUP + " --split mine", "--split: invalid choice: 'mine'"),
    Case("supervised split acdc on phantom", SUP + " --split acdc", "--split acdc needs patients"),
    Case("supervised steps word", SUP + " --steps many", "--steps: invalid int value: 'many'"),
    Case("supervised unknown option", SUP + " --stpes 3", "unrecognized arguments: --stpes 3"),
    # supervised: run folders and faults
    Case("supervised out is a file", SUP.replace("{c}/run", "{c}/f"),
         "f: exists and is not a folder", _write("f", "x")),
    Case("supervised out below a file", SUP.replace("{c}/run", "{c}/f/run"), "f.*Not a directory", _write("f", "x")),
    Case("supervised out exists", SUP, "run: run folder exists and is not empty; pass --resume", _write("run/x", "x")),
    Case("supervised resume not a run", SUP + " --resume", "run: not a medkit run folder", _write("run/x", "x")),
    Case("supervised resume params broken", SUP + " --resume", r"params.json: damaged, not valid JSON",
         _run_copy("sup", "run", _text("params.json", "{broken"))),
    Case("supervised resume params list", SUP + " --resume", r"params.json: the document: must be a JSON object",
         _run_copy("sup", "run", _text("params.json", "[1]"))),
    Case("supervised resume params differ", SUP.replace("--steps 2", "--steps 3") + " --resume",
         "cannot resume, parameters differ .*steps: 2 -> 3", _run_copy("sup", "run")),
    Case("supervised resume checkpoint random bytes", SUP + " --resume",
         r"checkpoint.pt: cannot be loaded .*damaged or not a torch file",
         _run_copy("sup", "run", lambda r: [(r / "metrics.json").unlink(), (r / "k1_c1" / "metrics.json").unlink(),
                                             (r / "k1_c1" / "checkpoint.pt").write_bytes(os.urandom(64))])),
    Case("supervised resume checkpoint wrong structure", SUP + " --resume",
         r"checkpoint.pt: not a medkit checkpoint of this kind \(no 'optimizer'",
         _run_copy("sup", "run", lambda r: [(r / "metrics.json").unlink(), (r / "k1_c1" / "metrics.json").unlink(),
                                             torch.save({"model": {}}, r / "k1_c1" / "checkpoint.pt")])),
    Case("supervised resume checkpoint with code", SUP + " --resume",
         r"checkpoint.pt: .*refused: it holds objects other than weights",
         _run_copy("sup", "run", lambda r: [(r / "metrics.json").unlink(), (r / "k1_c1" / "metrics.json").unlink(),
                                             _evil("k1_c1/checkpoint.pt")(r)])),
    Case("supervised no space for params", SUP, "params.json.*No space left on device", fault=_no_space("params")),
    Case("supervised no space for a checkpoint", SUP, "checkpoint.pt.*No space left on device",
         fault=_no_space("checkpoint")),
    Case("supervised permission denied", SUP.replace("{c}/run", "{c}/locked/run"), "locked.*Permission denied",
         fault=_denied),
    # pretrain
    Case("pretrain method unknown", PRE.replace("simclr", "byol"), "byol"),
    Case("pretrain set channels scalar", PRE + " --set channels=8", "channels"),
    Case("pretrain set proj dim negative", PRE + " --set proj_dim=-1", "proj_dim"),
    Case("pretrain set temperature zero", PRE + " --set temperature=0", "temperature"),
    Case("pretrain set temperature word", PRE + " --set temperature=warm", "temperature"),
    Case("pretrain set unknown key", PRE + " --set temprature=0.1", "temprature"),
    Case("pretrain set without equals", PRE + " --set temperature", "--set takes key=value, got 'temperature'"),
    Case("pretrain batch too small", PRE.replace("--batch-size 4", "--batch-size 1"),
         "--batch-size 1 is too small: a contrastive step needs at least 2"),
    Case("pretrain image size vs depth", PRE.replace("--image-size 64", "--image-size 48"), "--image-size must be .* got 48"),
    Case("pretrain pool frames unknown", PRE + " --pool-frames mid", "--pool-frames: invalid choice"),
    Case("pretrain steps zero", PRE.replace("--steps 2", "--steps 0"), "steps must be at least 1"),
    Case("pretrain warmup negative", PRE + " --warmup -1", "warmup must be 0 or more"),
    Case("pretrain data missing", PRE.replace("{data}", "{c}/nope"), "nope: no such folder"),
    Case("pretrain data damaged", PRE.replace("{data}", "{c}/data"), r"training\[0\]\.image",
         _dataset({"training": [{"image": 5}]})),
    Case("pretrain out is a file", PRE.replace("{c}/run", "{c}/f"), "f: exists and is not a folder", _write("f", "x")),
    Case("pretrain out exists", PRE, "pass --resume", _write("run/x", "x")),
    Case("pretrain resume params broken", PRE + " --resume", "params.json: damaged",
         _write("run/params.json", "{")),
    Case("pretrain resume params differ", PRE + " --resume", "cannot resume, parameters differ",
         _write("run/params.json", '{"command": "pretrain"}')),
    Case("pretrain no space at the end", PRE + " --resume", "model.pt.*No space left on device",
         _run_copy("pre", "run", lambda r: (r / "model.pt").unlink()), _no_space("model.pt")),
    # evaluate
    Case("evaluate checkpoint missing", EVAL + " --checkpoint {c}/nope", "nope: no such pretraining run folder"),
    Case("evaluate checkpoint is a file", EVAL + " --checkpoint {c}/f", "f: not a folder",
         _write("f", "x")),
    Case("evaluate checkpoint unfinished", EVAL + " --checkpoint {c}/pre", "pre: not a finished pretraining run",
         _run_copy("pre", "pre", lambda r: (r / "model.pt").unlink())),
    Case("evaluate params broken", EVAL + " --checkpoint {c}/pre", "params.json: damaged, not valid JSON",
         _run_copy("pre", "pre", _text("params.json", "{"))),
    Case("evaluate params list", EVAL + " --checkpoint {c}/pre", "params.json: the document: must be a JSON object",
         _run_copy("pre", "pre", _text("params.json", "[]"))),
    Case("evaluate params binary", EVAL + " --checkpoint {c}/pre", "params.json: damaged",
         _run_copy("pre", "pre", _text("params.json", b"\xff\xfe\x00"))),
    Case("evaluate params of a supervised run", EVAL + " --checkpoint {c}/pre", "command: must be 'pretrain'",
         _run_copy("pre", "pre", _params(lambda p: p.update(command="supervised")))),
    Case("evaluate params without method", EVAL + " --checkpoint {c}/pre", "'method' is a required property",
         _run_copy("pre", "pre", _params(lambda p: p.pop("method")))),
    Case("evaluate params method unknown", EVAL + " --checkpoint {c}/pre", "params.json: .*byol",
         _run_copy("pre", "pre", _params(lambda p: p.update(method="byol")))),
    Case("evaluate params config not a mapping", EVAL + " --checkpoint {c}/pre", "config: must be the method's config",
         _run_copy("pre", "pre", _params(lambda p: p.update(config=[1])))),
    Case("evaluate params config key unknown", EVAL + " --checkpoint {c}/pre", "params.json: .*colour",
         _run_copy("pre", "pre", _params(lambda p: p["config"].update(colour=1)))),
    Case("evaluate params image size word", EVAL + " --checkpoint {c}/pre", "image_size: must be a positive integer",
         _run_copy("pre", "pre", _params(lambda p: p.update(image_size="big")))),
    Case("evaluate model random bytes", EVAL + " --checkpoint {c}/pre", "model.pt: cannot be loaded",
         _run_copy("pre", "pre", _text("model.pt", os.urandom(100)))),
    Case("evaluate model empty", EVAL + " --checkpoint {c}/pre", "model.pt: cannot be loaded .*empty or cut short",
         _run_copy("pre", "pre", _text("model.pt", b""))),
    Case("evaluate model with code", EVAL + " --checkpoint {c}/pre",
         "model.pt: .*refused: it holds objects other than weights.*posix.system",
         _run_copy("pre", "pre", _evil("model.pt"))),
    Case("evaluate model without weights", EVAL + " --checkpoint {c}/pre", r"model.pt: .*no 'model' entry",
         _run_copy("pre", "pre", _torch("model.pt", {"weights": {}}))),
    Case("evaluate model a list", EVAL + " --checkpoint {c}/pre", r"model.pt: .*no 'model' entry",
         _run_copy("pre", "pre", _torch("model.pt", [1, 2]))),
    Case("evaluate model of another method", EVAL + " --checkpoint {c}/pre",
         "model.pt: its weights do not fit a moco_v2",
         _run_copy("pre", "pre", _params(lambda p: p.update(method="moco_v2")))),
    Case("evaluate model of other widths", EVAL + " --checkpoint {c}/pre", "model.pt: its weights do not fit",
         _run_copy("pre", "pre", _params(lambda p: p["config"].update(channels=[8, 16, 32, 64, 128])))),
    Case("evaluate protocol unknown", EVAL + " --checkpoint random --eval-protocol knn",
         "--eval-protocol: invalid choice"),
    Case("evaluate transfer unknown", EVAL + " --checkpoint random --transfer head", "--transfer: invalid choice"),
    Case("evaluate labelled zero", EVAL + " --checkpoint random --labelled 0", "--labelled takes"),
    Case("evaluate combos zero", EVAL + " --checkpoint random --combos 0", "--combos must be a positive number"),
    Case("evaluate out exists", EVAL + " --checkpoint random", "pass --resume", _write("run/x", "x")),
    # compare
    Case("compare one run", "compare {sup}", "compare needs a baseline run and at least one"),
    Case("compare run missing", "compare {sup} {c}/nope", "nope: no results.csv"),
    Case("compare run unfinished", "compare {sup} {c}/run", "run: no results.csv",
         _run_copy("sup", "run", lambda r: (r / "results.csv").unlink())),
    Case("compare results not a table", "compare {sup} {c}/run", "B = .*run: results have no column",
         _run_copy("sup", "run", _text("results.csv", "a,b\n1,2\n"))),
    Case("compare other pairs", "compare {sup} {sup2}", "do not have the same .* pairs"),
    Case("compare out below a file", "compare {sup} {sup} --out {c}/f/t.csv",
         "f is a file, not a folder", _write("f", "x")),
    # study
    Case("study file missing", "study {c}/nope.yaml", "nope.yaml: no such study file"),
    Case("study file is a folder", "study {c}/d", "d: not a file", _write("d/x", "")),
    Case("study yaml broken", "study {c}/s.yaml --root {c}/root", r"s.yaml: not valid YAML at line \d+",
         _study("notebooks: [NB\nbase: {")),
    Case("study yaml binary", "study {c}/s.yaml --root {c}/root", "s.yaml: not", _write("s.yaml", b"\xff\xfe\x00\x01")),
    Case("study top level list", "study {c}/s.yaml --root {c}/root", "the document: must be a mapping",
         _study("- NB\n")),
    Case("study top level number", "study {c}/s.yaml --root {c}/root",
         "the document: must be a mapping", _study("5\n")),
    Case("study empty", "study {c}/s.yaml --root {c}/root", "the document: must be a mapping", _study("")),
    Case("study no notebooks", "study {c}/s.yaml --root {c}/root", "'notebooks' is a required property",
         _study("base: {X: 1}\n")),
    Case("study notebooks empty", "study {c}/s.yaml --root {c}/root", "notebooks: must be a non-empty list",
         _study("notebooks: []\n")),
    Case("study notebook a number", "study {c}/s.yaml --root {c}/root", r"notebooks\[0\]: must be a notebook path",
         _study("notebooks: [5]\n")),
    Case("study notebook missing", "study {c}/s.yaml --root {c}/root", "notebook nope.ipynb not found",
         _study("notebooks: [nope.ipynb]\n")),
    Case("study unknown key", "study {c}/s.yaml --root {c}/root", "unknown key.*'gird'",
         _study("notebooks: [NB]\ngird: {X: [1]}\n")),
    Case("study grid a list", "study {c}/s.yaml --root {c}/root", "grid: must be a mapping of grid entries",
         _study("notebooks: [NB]\ngrid: [1, 2]\n")),
    Case("study grid entry scalar", "study {c}/s.yaml --root {c}/root", "grid.X: must be a non-empty list",
         _study("notebooks: [NB]\ngrid: {X: 3}\n")),
    Case("study grid entry empty", "study {c}/s.yaml --root {c}/root", "grid.X: .*non-empty",
         _study("notebooks: [NB]\ngrid: {X: []}\n")),
    Case("study variant not a mapping", "study {c}/s.yaml --root {c}/root", "grid.variant.a: must be a mapping",
         _study("notebooks: [NB]\ngrid: {variant: {a: 3}}\n")),
    Case("study base a number", "study {c}/s.yaml --root {c}/root",
         "base: must be a mapping", _study("notebooks: [NB]\nbase: 5\n")),
    Case("study reference not boolean", "study {c}/s.yaml --root {c}/root", "reference: must be true or false",
         _study("notebooks: [NB]\nreference: maybe\n")),
    Case("study name a path", "study {c}/s.yaml --root {c}/root", "name: must be a plain name.*'../../x'",
         _study("name: ../../x\nnotebooks: [NB]\n")),
    Case("study name absolute", "study {c}/s.yaml --root {c}/root", "name: must be a plain name.*'/tmp/x'",
         _study("name: /tmp/x\nnotebooks: [NB]\n")),
    Case("study unknown parameter", "study {c}/s.yaml --root {c}/root", "'XX' is not a parameter of .*tiny_study",
         _study("notebooks: [NB]\nbase: {XX: 1}\n")),
    Case("study unknown grid parameter", "study {c}/s.yaml --root {c}/root", "'Y' is not a parameter",
         _study("notebooks: [NB]\ngrid: {Y: [1, 2]}\n")),
    Case("study unknown set parameter", "study {c}/s.yaml --root {c}/root --set XX=1", "'XX' is not a parameter",
         _study("notebooks: [NB]\n")),
    Case("study set without equals", "study {c}/s.yaml --root {c}/root --set X", "--set takes key=value",
         _study("notebooks: [NB]\n")),
    Case("study workers zero", "study {c}/s.yaml --root {c}/root --workers 0", "--workers must be at least 1",
         _study("notebooks: [NB]\n")),
    Case("study root is a file", "study {c}/s.yaml --root {c}/f", "f.*(File exists|Not a directory)",
         lambda c, w: [_study("notebooks: [NB]\n")(c, w), _write("f", "x")(c, w)]),
    Case("study changed parameters", "study {c}/s.yaml --root {c}/root", "finished with other parameters .*X: 1 -> 2",
         _finished_study),
    Case("study changed option unknown", "study {c}/s.yaml --changed ignore", "--changed: invalid choice",
         _study("notebooks: [NB]\n")),
    # bench
    Case("bench size 33", "bench --out {c}/b --sizes 33", "--sizes: 33 is not a positive multiple of 32"),
    Case("bench size 0", "bench --out {c}/b --sizes 0", "--sizes: 0 is not a positive multiple"),
    Case("bench size word", "bench --out {c}/b --sizes big", "--sizes takes an integer, got 'big'"),
    Case("bench repeats 0", "bench --out {c}/b --repeats 0", "--repeats must be at least 1"),
    Case("bench batch 1", "bench --out {c}/b --batch-size 1", "--batch-size must be at least 2"),
    Case("bench method unknown", "bench --out {c}/b --methods byol", "--methods: byol unknown"),
    Case("bench out below a file", "bench --out {c}/f/b", "f is a file, not a folder", _write("f", "x")),
    # diagnose
    Case("diagnose checkpoint missing", DX + " --checkpoint {c}/nope", "nope: no such pretraining run folder"),
    Case("diagnose checkpoint unfinished", DX + " --checkpoint {c}/pre", "not a finished pretraining run",
         _run_copy("pre", "pre", lambda r: (r / "model.pt").unlink())),
    Case("diagnose params broken", DX + " --checkpoint {c}/pre", "params.json: damaged",
         _run_copy("pre", "pre", _text("params.json", "{"))),
    Case("diagnose model of another method", DX + " --checkpoint {c}/pre", "its weights do not fit a moco_v2",
         _run_copy("pre", "pre", _params(lambda p: p.update(method="moco_v2")))),
    Case("diagnose second checkpoint damaged", DX + " --checkpoint {pre} --checkpoint {c}/pre2",
         "pre2/model.pt: cannot be loaded", _run_copy("pre", "pre2", _text("model.pt", b"junk"))),
    Case("diagnose same names", DX + " --checkpoint {pre} --checkpoint {pre}", "must have distinct names"),
    Case("diagnose max n 0", DX.replace("16", "0") + " --checkpoint {pre}", "--max-n must be at least 2 .* got 0"),
    Case("diagnose max n negative", DX.replace("16", "-3") + " --checkpoint {pre}", "--max-n must be at least 2"),
    Case("diagnose data missing", DX.replace("{data}", "{c}/nope") + " --checkpoint {pre}", "nope: no such folder"),
    Case("diagnose device tpu", DX + " --checkpoint {pre} --device tpu", "--device must be auto, cpu or cuda"),
    Case("diagnose out is a file", DX.replace("{c}/dx", "{c}/f") + " --checkpoint {pre}",
         "f: exists and is not a folder",
         _write("f", "x")),
    Case("diagnose out exists", DX + " --checkpoint {pre}",
         "dx: run folder exists .* pass --resume", _write("dx/x", "x")),
    Case("diagnose no space", DX + " --checkpoint {pre}", "diagnostics.json.*No space left on device",
         fault=_no_space("diagnostics")),
    # calibrate
    Case("calibrate real missing", CAL.replace("--real {data}", "--real {c}/nope"), "--real .*nope: no such folder"),
    Case("calibrate real is a file", CAL.replace("--real {data}", "--real {c}/f"), "--real .*f: no such folder",
         _write("f", "x")),
    Case("calibrate real without labels", CAL.replace("--real {data}", "--real {c}/d"), "d: the data set is empty",
         _write("d/imagesTr/x.txt", "x")),
    Case("calibrate labelled all", CAL + " --labelled all", "--labelled all: give numbers of volumes"),
    Case("calibrate labelled word", CAL + " --labelled one", "--labelled takes .* got 'one'"),
    Case("calibrate labelled too many", CAL + " --labelled 400", "--labelled 400: only"),
    Case("calibrate combos zero", CAL + " --combos 0", "--combos must be a positive number"),
    Case("calibrate image size 48", CAL + " --image-size 48", "--image-size must be a positive multiple of 32"),
    Case("calibrate steps zero", CAL + " --steps 0", "steps must be at least 1, got 0"),
    Case("calibrate reference below a file", CAL + " --reference {c}/f/ref", "f is a file, not a folder",
         _write("f", "x")),
    Case("calibrate out exists", CAL, "phantom: run folder exists .* pass --resume", _write("cal/phantom/x", "x")),
    # the command line itself
    Case("no command", "", "the following arguments are required: command"),
    Case("unknown command", "train", "invalid choice: 'train'"),
]


# ---- the runner ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory, phantom_dir) -> dict:
    """Finished runs that cases read (and must leave unchanged): a pretraining run, two few-label runs."""
    w = tmp_path_factory.mktemp("world")
    for command, out in ((PRE, "pre"), (SUP, "sup"), (SUP + " --seeds 0,1", "sup2")):
        argv = [a.format(data=phantom_dir, c=w) for a in command.split()]
        assert main([str(w / out) if a == str(w / "run") else a for a in argv]) == 0
    return {"data": phantom_dir, "pre": w / "pre", "sup": w / "sup", "sup2": w / "sup2", "root": w}


def _snapshot(*roots: Path) -> dict:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            st = p.lstat()
            out[str(p)] = (st.st_mode, hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else None)
    return out


def _show_warnings(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` as a user's process runs it: its exit code and its stderr, warnings included."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warnings
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_line_and_changes_nothing(case, world, tmp_path, monkeypatch):
    c = tmp_path / "case"
    c.mkdir()
    monkeypatch.chdir(Path(__file__).parents[1])  # notebooks' paths in study files are relative to the repo
    if case.setup is not None:
        case.setup(c, world)
    before = _snapshot(c, world["root"])
    if case.fault is not None:
        case.fault(monkeypatch, c)
    fields = {"c": c, **{k: v for k, v in world.items() if k != "root"}}
    argv = [a.format(**fields) for a in case.argv.split()]
    code, err = run_cli(argv)
    monkeypatch.undo()
    lines = err.strip().splitlines()
    command = argv[0] if argv else ""
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert re.match(rf"medkit( {re.escape(command)})?: error: ", lines[0]), lines[0]
    assert re.search(case.culprit, lines[0]), lines[0]
    assert _snapshot(c, world["root"]) == before
    assert not Path("/tmp/medkit_pwned").exists()


def test_the_battery_covers_every_command():
    """At least 100 cases, and every command of the command line has some."""
    from medkit.cli import parser
    per = Counter(c.argv.split()[0] if c.argv else "(none)" for c in CASES)
    commands = set(parser()._subparsers._group_actions[0].choices)
    assert len(CASES) >= 100 and commands <= set(per), (len(CASES), commands - set(per))
    assert len({c.name for c in CASES}) == len(CASES)
