from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from monai.networks.blocks import Convolution

from medkit.data.phantom import LABELS, make_phantom
from medkit.data.slices import make_slices
from medkit.engine.checkpoints import load_checkpoint
from medkit.engine.config import TrainConfig
from medkit.engine.device import seed_everything
from medkit.engine.fit import fit_segmentation
from medkit.engine.loop import compile_blocks, make_optimizer, make_scheduler, param_groups
from medkit.engine.runs import open_run
from medkit.errors import MedkitError
from medkit.models import build_model


@pytest.fixture(scope="module")
def tiny():
    return make_slices(make_phantom(3, seed=0, frames="ed", size=64), LABELS, image_size=32)


def _train(data, run_dir, stop_after=None, val=None, compile=""):
    seed_everything(0)
    model = build_model("unet-small", 4)
    cfg = TrainConfig(steps=12, batch_size=4, ckpt_every=5, log_every=2, val_every=4, device="cpu", compile=compile)
    out = fit_segmentation(model, data, cfg, run_dir, val=val, stop_after=stop_after, progress=False)
    return model, out


def test_resume_after_interruption_equals_uninterrupted(tiny, tmp_path):
    ref, _ = _train(tiny, tmp_path / "a", val=tiny)
    _, out = _train(tiny, tmp_path / "b", stop_after=8, val=tiny)  # killed at step 8; last checkpoint: 5
    assert out["interrupted"] and not (tmp_path / "b" / "model.pt").exists()
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 5
    resumed, _ = _train(tiny, tmp_path / "b", val=tiny)
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(ha) == strip(hb) and any("val_dice" in e for e in ha)


def test_training_lowers_the_loss(tiny, tmp_path):
    _, _ = _train(tiny, tmp_path / "r")
    hist = [e["loss"] for e in json.loads((tmp_path / "r" / "history.json").read_text()) if "loss" in e]
    assert hist[-1] < hist[0]


def test_checkpoints_load_with_weights_only(tiny, tmp_path):
    _train(tiny, tmp_path / "r")
    state = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    assert "model" in state
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MedkitError, match="cannot be loaded"):
        load_checkpoint(tmp_path / "bad.pt")


def test_run_folder_is_never_overwritten(tmp_path):
    run = open_run(tmp_path / "r", {"steps": 10})
    (run / "result.txt").write_text("precious")
    with pytest.raises(MedkitError, match="pass --resume"):
        open_run(tmp_path / "r", {"steps": 10})
    with pytest.raises(MedkitError, match="parameters differ"):
        open_run(tmp_path / "r", {"steps": 20}, resume=True)
    assert open_run(tmp_path / "r", {"steps": 10}, resume=True) == run
    assert (run / "result.txt").read_text() == "precious"


def test_bad_config_names_the_option():
    with pytest.raises(MedkitError, match="unknown training option"):
        TrainConfig.from_dict({"stpes": 3})
    with pytest.raises(MedkitError, match="lr must be"):
        TrainConfig(lr=float("nan"))


def test_compiled_blocks_train_like_eager_and_keep_checkpoint_keys(tiny, tmp_path):
    """torch.compile behind a parameter: the "eager" backend traces every conv block through
    dynamo (fast on a CPU) and must give the eager run's losses and state-dict keys."""
    eager, _ = _train(tiny, tmp_path / "e")
    compiled, _ = _train(tiny, tmp_path / "c", compile="eager")
    blocks = [m for m in compiled.modules() if isinstance(m, Convolution)]
    assert blocks and all(b._compiled_call_impl is not None for b in blocks)  # train_loop compiled them
    assert all(m._compiled_call_impl is None for m in eager.modules() if isinstance(m, Convolution))
    assert list(eager.state_dict()) == list(compiled.state_dict())  # checkpoints interchangeable
    he = [e["loss"] for e in json.loads((tmp_path / "e" / "history.json").read_text()) if "loss" in e]
    hc = [e["loss"] for e in json.loads((tmp_path / "c" / "history.json").read_text()) if "loss" in e]
    assert he == pytest.approx(hc, abs=1e-5)


def test_unavailable_compile_backend_warns_and_stays_eager():
    with pytest.warns(UserWarning, match="running eagerly"):
        assert compile_blocks(build_model("unet-small", 4), "no-such-backend") == 0


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_learning_rate_follows_the_schedule(schedule):
    """torch's schedulers give lr_s = lr/2 (1 + cos(pi s / steps)) (cosine) or lr (constant)."""
    cfg = TrainConfig(steps=20, lr=0.1, schedule=schedule, device="cpu")
    opt = make_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg.lr)
    sched = make_scheduler(opt, cfg)
    for s in range(1, cfg.steps + 1):
        opt.step()
        sched.step()
        want = 0.05 * (1 + math.cos(math.pi * s / cfg.steps)) if schedule == "cosine" else 0.1
        assert sched.get_last_lr()[0] == pytest.approx(want, abs=1e-9), s


def test_warmup_then_cosine_and_a_head_learning_rate():
    cfg = TrainConfig(steps=10, lr=0.1, warmup=4, head_lr=1.0, device="cpu")
    model = build_model("unet-small", 3)
    params = [p for p in model.parameters()]
    groups = param_groups(model, params, cfg)
    head = {id(p) for p in model.head.parameters()}
    assert {id(p) for p in groups[1]["params"]} == head and groups[1]["lr"] == 1.0
    assert not head & {id(p) for p in groups[0]["params"]}
    opt = make_optimizer(groups, cfg.lr)
    sched = make_scheduler(opt, cfg)
    lrs = []
    for _ in range(cfg.steps):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    # linear warm-up from lr / 5 over 4 steps, then cosine over the 6 remaining steps; the head at 10x
    want = [0.1 * (1 + 4 * s / 4) / 5 for s in range(4)] + [0.05 * (1 + math.cos(math.pi * s / 6)) for s in range(6)]
    np.testing.assert_allclose([g[0] for g in lrs], want, atol=1e-9)
    np.testing.assert_allclose([g[1] for g in lrs], [10 * w for w in want], atol=1e-8)
    with pytest.raises(MedkitError, match="warmup"):
        TrainConfig(steps=5, warmup=5)
    headless = torch.nn.Linear(2, 2)
    with pytest.raises(MedkitError, match="head_lr"):
        param_groups(headless, list(headless.parameters()), cfg)


def test_kill_during_a_checkpoint_write_resumes_to_identical_weights(tiny, tmp_path):
    """A real SIGKILL while the second checkpoint is half written: the first checkpoint is intact,
    the half-written temporary file is removed at resume, and the resumed run ends with the same
    weights, bit for bit, as an uninterrupted one."""
    import subprocess
    import sys
    from pathlib import Path
    helper = Path(__file__).parents[1] / "helpers" / "kill_during_save.py"
    run = tmp_path / "killed"
    proc = subprocess.run([sys.executable, str(helper), str(run)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    stale = list(run.glob(".checkpoint.pt.*.tmp"))
    assert len(stale) == 1 and stale[0].stat().st_size > 0  # the killed write's half file
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 5  # the last complete checkpoint
    ref, _ = _train(tiny, tmp_path / "a", val=tiny)
    resumed, _ = _train(tiny, run, val=tiny)
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_run_files_follow_the_umask(tmp_path):
    """Run files are readable by the group when the umask allows it (mkstemp alone gives 0600)."""
    import os

    from medkit.engine.runs import write_json
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o077)
        write_json(tmp_path / "b.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600


def test_a_damaged_resume_checkpoint_is_one_clear_error(tiny, tmp_path):
    _train(tiny, tmp_path / "r", stop_after=6)
    torch.save({"model": {}}, tmp_path / "r" / "checkpoint.pt")
    with pytest.raises(MedkitError, match="not a medkit checkpoint of this kind .*'optimizer'"):
        _train(tiny, tmp_path / "r")
