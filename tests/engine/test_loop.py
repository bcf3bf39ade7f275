from __future__ import annotations

import copy
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
from medkit.engine.device import pick_device, seed_everything
import medkit.engine.fit as fit
from medkit.engine.fit import ConsistencyConfig, fit_cross_consistency, fit_segmentation
from medkit.engine.loop import Hooks, compile_blocks, make_optimizer, make_scheduler, param_groups, train_loop
from medkit.engine.runs import open_run
from medkit.errors import MedkitError
from medkit.eval.probes import segmentation_model
from medkit.models import build_model
from medkit.models.unet import UNet


@pytest.fixture(scope="module")
def tiny():
    return make_slices(make_phantom(3, seed=0, frames="ed", size=64), LABELS, image_size=32)


class Killed(Exception):
    """Stands for the process dying in the middle of a training."""


def _train(data, run_dir, val=None, compile=""):
    seed_everything(0)
    model = build_model("unet-small", 4)
    cfg = TrainConfig(steps=12, batch_size=4, ckpt_every=5, log_every=2, val_every=4, device="cpu", compile=compile)
    out = fit_segmentation(model, data, cfg, run_dir, val=val, progress=False)
    return model, out


def _killed_at(monkeypatch, step):
    """The next training dies (raises :class:`Killed`) as it starts step ``step`` (0-based), after
    ``step`` completed steps; its run folder holds what was written until then."""
    real = fit.train_loop

    def loop(model, step_fn, *args, **kwargs):
        def dying(g, i):
            if i == step:
                raise Killed(f"killed at step {i}")
            return step_fn(g, i)
        return real(model, dying, *args, **kwargs)
    monkeypatch.setattr(fit, "train_loop", loop)


def test_resume_after_interruption_equals_uninterrupted(tiny, tmp_path, monkeypatch):
    ref, _ = _train(tiny, tmp_path / "a", val=tiny)
    with monkeypatch.context() as m:
        _killed_at(m, 8)
        with pytest.raises(Killed):
            _train(tiny, tmp_path / "b", val=tiny)  # dies after 8 steps; last checkpoint: 5
    assert not (tmp_path / "b" / "model.pt").exists()
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
    with pytest.raises(MedkitError, match="pass resume=True"):
        open_run(tmp_path / "r", {"steps": 10})
    with pytest.raises(MedkitError, match="parameters differ"):
        open_run(tmp_path / "r", {"steps": 20}, resume=True)
    assert open_run(tmp_path / "r", {"steps": 10}, resume=True) == run
    assert (run / "result.txt").read_text() == "precious"


def test_bad_config_names_the_option():
    with pytest.raises(MedkitError, match="lr must be"):
        TrainConfig(lr=float("nan"))
    for name in ("tpu", "cuda0", "cuda:x", "CPU", ""):
        with pytest.raises(MedkitError, match=f"^device must be auto, cpu or cuda\\[:N\\], got {name!r}$"):
            TrainConfig(device=name)


def test_building_a_config_probes_no_device_and_picking_one_does(monkeypatch):
    """TrainConfig checks how ``device`` is spelt; whether CUDA is there is found out when a run
    picks the device."""
    def probe():
        raise AssertionError("CUDA probed")
    monkeypatch.setattr(torch.cuda, "is_available", probe)
    names = ["auto", "cpu", "cuda", "cuda:1"]
    assert [TrainConfig(device=d).device for d in names] == names
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu") and pick_device("cpu") == torch.device("cpu")
    with pytest.raises(MedkitError, match="^device cuda:1: CUDA is not available"):
        pick_device("cuda:1")


@pytest.mark.parametrize("consistency", [ConsistencyConfig(weight=0.5, threshold=0.0),
                                         ConsistencyConfig(threshold=1.0)])
def test_cross_consistency_weights_its_term_as_configured(consistency, tiny, tmp_path):
    """L = L_sup + weight * ramp * L_cons with ramp = min(1, i / (0.2 steps)) at step i (0-based);
    a threshold of 1 lets no pseudo-label through (L_cons = 0)."""
    seed_everything(0)
    model = segmentation_model(UNet(1, 0, (8, 16, 32)), 4, "consistency")
    cfg = TrainConfig(steps=10, batch_size=2, log_every=1, val_every=0, ckpt_every=10, device="cpu")
    fit_cross_consistency(model, tiny, tiny, cfg, tmp_path / "r", consistency=consistency, progress=False)
    hist = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [e["step"] for e in hist] == list(range(1, 11))
    for e in hist:
        ramp = min(1.0, (e["step"] - 1) / 2)
        want = e["supervised"] + consistency.weight * ramp * e["consistency"]
        assert e["loss"] == pytest.approx(want, rel=1e-5, abs=1e-6), e
    assert (max(e["consistency"] for e in hist) > 0) == (consistency.threshold < 1)
    with pytest.raises(MedkitError, match="^threshold must be in"):
        ConsistencyConfig(threshold=1.5)


def test_hooks_run_when_the_schedule_says(tmp_path):
    """after_step after every optimiser step; monitor and validate every val_every steps and at
    the last; the best validation score's weights are the ones kept."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    cfg = TrainConfig(steps=7, batch_size=1, lr=0.1, val_every=3, ckpt_every=7, log_every=7, device="cpu",
                      channels_last=False)
    seen, scores = [], iter([0.5, 0.9, 0.1])  # validations at steps 3, 6 and 7: the best at 6
    kept = {}

    def step(g, i):
        return {"loss": model(torch.ones(1, 2)).pow(2).sum()}

    def validate():
        kept[len(seen)] = copy.deepcopy(model.state_dict())
        return next(scores)

    hooks = Hooks(validate=validate, monitor=lambda: {"m": float(len(seen))}, after_step=lambda: seen.append(1))
    out = train_loop(model, step, cfg, tmp_path / "r", hooks=hooks, progress=False)
    assert len(seen) == 7 and out["best_val"] == 0.9 and out["best_step"] == 6
    hist = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [(e["step"], e["m"]) for e in hist if "m" in e] == [(3, 3.0), (6, 6.0), (7, 7.0)]
    assert [(e["step"], e["val_dice"]) for e in hist if "val_dice" in e] == [(3, 0.5), (6, 0.9), (7, 0.1)]
    for k, v in kept[6].items():
        assert torch.equal(model.state_dict()[k], v), k


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


def test_a_damaged_resume_checkpoint_is_one_clear_error(tiny, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _killed_at(m, 6)
        with pytest.raises(Killed):
            _train(tiny, tmp_path / "r")
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["step"] == 5
    torch.save({"model": {}}, tmp_path / "r" / "checkpoint.pt")
    with pytest.raises(MedkitError, match="not a medkit checkpoint of this kind .*'optimizer'"):
        _train(tiny, tmp_path / "r")
