"""Two CPU processes under torchrun (gloo) give the single-process loss and gradients on the same
global batch: negatives, MoCo keys and whitening statistics are gathered across processes when the
method is built with ``gather_distributed=True``, and only then."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HELPER = Path(__file__).parents[1] / "helpers" / "ddp_step.py"
ROOT = Path(__file__).parents[2]


def _torchrun(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_two_processes_match_one_on_the_same_global_batch(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(HELPER), str(tmp_path / "one.pt")], check=True, env=env, cwd=ROOT)
    _torchrun([str(HELPER), str(tmp_path / "two.pt")])
    one = torch.load(tmp_path / "one.pt", weights_only=False)
    two = torch.load(tmp_path / "two.pt", weights_only=False)
    assert one["world"] == 1 and two["world"] == 2
    for case in ("simclr", "moco_v2", "whitened_moco", "chaitanya_GD", "chaitanya_GD-"):
        a, b = one[case], two[case]
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5), case
        # DDP averages the processes' gradients; through the gathers this is the global-batch gradient
        assert torch.allclose(a["grad"], b["grad"], atol=1e-5, rtol=1e-4), \
            (case, float((a["grad"] - b["grad"]).abs().max()))
        if a["queue"] is not None:  # both processes' keys entered the queue, in the same order
            assert torch.allclose(a["queue"], b["queue"], atol=1e-6), case
    # without gather_distributed each process contrasts its own half-batch, even in a process group
    assert two["simclr_per_process"]["loss"] != pytest.approx(one["simclr_per_process"]["loss"], abs=1e-3)
    assert one["simclr_per_process"]["loss"] == pytest.approx(one["simclr"]["loss"], abs=1e-6)


def test_pretrain_under_torchrun_writes_one_run_folder(tmp_path):
    out = tmp_path / "run"
    _torchrun(["-m", "medkit", "pretrain", "--method", "simclr", "--data", "phantom", "--image-size", "32",
               "--steps", "4", "--batch-size", "8", "--val-every", "2", "--ckpt-every", "2", "--quiet",
               "--out", str(out)])
    assert (out / "model.pt").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    history = json.loads((out / "history.json").read_text())
    assert [e["step"] for e in history if "loss" in e] and any("rankme_h" in e for e in history)
