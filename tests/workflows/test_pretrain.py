"""Every method pretrains, checkpoints, resumes and never reads a label."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

import medkit.workflows.pretrain as pre
from medkit.data.batches import partition_table, sample_batch
from medkit.data.datasets import DataConfig, load_dataset
from medkit.engine.config import TrainConfig
from medkit.errors import MedkitError
from medkit.methods import METHODS, build_method
from medkit.engine.loading import load_pretrained
from medkit.engine.spec import RunSpec
from medkit.workflows.pretrain import pretrain

TINY = {"channels": (8, 16, 32, 64)}
CASES = [("simclr", {}), ("chaitanya", {"strategy": "GD"}), ("chaitanya", {"local": True, "global_steps": 2}),
         ("chaitanya", {"local": True, "local_strategy": "LD", "region_spacing": 3, "global_steps": 2}),
         ("moco_v2", {"queue": 32}), ("med_moco", {"queue": 32, "n_regions": 4}),
         ("pix2rep", {"pixels": 64}), ("pix2rep", {"loss": "barlow", "pixels": 64}), ("ideal", {"feature_level": 2}),
         ("pix2rep", {"pixels": 64, "chunk": 16}), ("ideal", {"feature_level": 1, "chunk": 32})]


class Poison:
    """Stands in for the labels: any use at all fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"pretraining touched the labels ({name})")

    def __getitem__(self, key):
        raise AssertionError("pretraining indexed the labels")


@pytest.fixture
def poisoned(monkeypatch):
    real = pre.load_dataset

    def load(*a, **k):
        ds = real(*a, **k)
        return replace(ds, slices=replace(ds.slices, labels=Poison(), native_labels=Poison()))
    monkeypatch.setattr(pre, "load_dataset", load)


def _cfg(steps=4):
    return TrainConfig(steps=steps, batch_size=8, ckpt_every=2, log_every=1, val_every=2, device="cpu")


def _spec(method, options, cfg, image_size=32):
    return RunSpec(DataConfig("phantom", image_size=image_size, seed=cfg.seed), cfg, method, options)


def _killed_at(monkeypatch, step):
    """The next training is killed (KeyboardInterrupt, as Ctrl-C) as it starts step ``step``."""
    real = pre.train_loop

    def loop(model, step_fn, *args, **kwargs):
        def killing(g, i):
            if i == step:
                raise KeyboardInterrupt
            return step_fn(g, i)
        return real(model, killing, *args, **kwargs)
    monkeypatch.setattr(pre, "train_loop", loop)


@pytest.mark.parametrize("name,over", CASES)
def test_each_method_pretrains_without_labels(name, over, tmp_path, poisoned):
    run = pretrain(_spec(name, {**TINY, **over}, _cfg()), tmp_path / "r", progress=False)
    hist = json.loads((run / "history.json").read_text())
    losses = [e["loss"] for e in hist if "loss" in e]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert any("rankme_h" in e for e in hist)  # the collapse monitor ran
    if name in ("pix2rep", "ideal"):  # dense methods: pixel embeddings are monitored too
        assert any("rankme_z_pixels" in e for e in hist)
    m = load_pretrained(run)
    assert type(m) is METHODS[name][0]


@pytest.mark.parametrize("name,over", CASES)
def test_each_method_resumes_to_the_same_weights_and_evaluates(name, over, tmp_path, monkeypatch):
    from medkit.workflows.supervised import FewLabelConfig
    from medkit.workflows.evaluate import Transfer, run_evaluation
    spec = _spec(name, {**TINY, **over}, _cfg(4))
    a = pretrain(spec, tmp_path / "a", progress=False)
    with monkeypatch.context() as mp:
        _killed_at(mp, 3)  # after the checkpoint of step 2
        with pytest.raises(KeyboardInterrupt):
            pretrain(spec, tmp_path / "b", progress=False)
    assert not (tmp_path / "b" / "model.pt").exists()
    b = pretrain(spec, tmp_path / "b", progress=False, resume=True)
    sa, sb = load_pretrained(a).state_dict(), load_pretrained(b).state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    m = run_evaluation(a, replace(spec, train=_cfg(2)), FewLabelConfig((1,), 1), Transfer("linear"), tmp_path / "e",
                       progress=False)
    # the mean Dice is that of the saved probe's predictions on the test volumes, recomputed with numpy
    import numpy as np

    from medkit.engine.loading import load_few_label_model
    from medkit.eval.predict import predict_case
    test = load_dataset(spec.data).part("test")
    net = load_few_label_model(tmp_path / "e", "k1_c1", test.n_classes)
    per_case = []
    for i in range(len(test.cases)):
        pred, truth = predict_case(net, test, i, torch.device("cpu")), np.asarray(test.native_labels[i])
        per_case.append(np.mean([2 * ((pred == c) & (truth == c)).sum() / ((pred == c).sum() + (truth == c).sum())
                                 if ((pred == c) | (truth == c)).any() else 1.0 for c in range(1, test.n_classes)]))
    assert m["by_k"]["1"]["mean"]["dice_mean"] == pytest.approx(np.mean(per_case), abs=1e-6)


@pytest.mark.parametrize("name,over", CASES)
def test_loss_decreases_on_a_phantom_batch(name, over):
    """On a fixed batch with fixed views (the generator is reseeded), a few steps lower the loss."""
    ds = load_dataset(DataConfig("phantom", image_size=32), phantom_subjects=8)
    pool = ds.part("pool")
    torch.manual_seed(0)
    m = build_method(name, {**TINY, **over})
    batch = sample_batch(pool, 16, torch.Generator().manual_seed(0), m.structured_batches(), 4)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for step in range(8):
        out = m.loss(batch, torch.Generator().manual_seed(1), step + 2)  # past chaitanya's global_steps
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        m.after_step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < losses[0], losses


def test_unknown_method_and_key_are_named():
    with pytest.raises(MedkitError, match="unknown method 'byol'"):
        build_method("byol")
    with pytest.raises(MedkitError, match="unknown option.*temprature"):
        build_method("simclr", {"temprature": 0.1})
    with pytest.raises(MedkitError, match="strategy must be one of"):
        build_method("chaitanya", {"strategy": "GX"})
    with pytest.raises(MedkitError, match="expected float"):
        build_method("simclr", {"temperature": "warm"})
    with pytest.raises(MedkitError, match="batch_size 8 is too small to whiten groups of 16"):
        build_method("med_moco", {"whitening_groups": 16}).check_batch(8)


def test_pool_holds_no_test_patient():
    ds = load_dataset(DataConfig("phantom", image_size=32), phantom_subjects=10)
    assert not set(ds.part("pool").patients) & set(ds.split.test)


def test_structured_batches_take_one_slice_per_partition_of_distinct_volumes():
    ds = load_dataset(DataConfig("phantom", image_size=32), phantom_subjects=8)
    pool = ds.part("pool")
    table = partition_table(pool, 4)
    for seed in range(5):
        b = sample_batch(pool, 16, torch.Generator().manual_seed(seed), True, 4, table)
        vol, part = b.volume.view(4, 4), b.partition.view(4, 4)  # 4 volumes x 4 partitions
        assert (vol == vol[:, :1]).all() and len(set(vol[:, 0].tolist())) == 4
        assert (part == torch.arange(4)).all()


def test_a_trivial_task_is_warned_about_and_recorded(tmp_path, monkeypatch):
    """A loss term below a tenth of its chance value in the first 5 % of the steps is flagged once."""
    from medkit.methods.simclr import SimCLR
    monkeypatch.setattr(SimCLR, "chance", lambda self, b, s: {"loss": 1e6})  # any real loss is far below
    cfg = TrainConfig(steps=20, batch_size=8, val_every=0, ckpt_every=20, device="cpu")
    with pytest.warns(pre.TrivialTaskWarning, match="'loss' fell to"):
        run = pre.pretrain(_spec("simclr", {"channels": (8, 16, 32)}, cfg), tmp_path / "r", progress=False)
    found = json.loads((run / "summary.json").read_text())["trivial_terms"]
    assert found["loss"]["step"] == 0 and found["loss"]["chance"] == 1e6


def test_watch_looks_only_at_the_first_steps_of_each_term():
    watch = pre.TrivialTaskWatch({"global": 2.0, "local": 2.4}, steps=100)  # window: 5 steps
    for step in range(10):
        watch(step, {"global": torch.tensor(1.0)})  # never below 0.2
    for step in range(10, 20):  # the local stage starts at step 10; trivial at its 6th step: too late
        watch(step, {"local": torch.tensor(0.1 if step >= 15 else 2.0)})
    assert watch.found == {}
    watch2 = pre.TrivialTaskWatch({"local": 2.4}, steps=100)
    with pytest.warns(pre.TrivialTaskWarning):
        for step in range(10, 20):
            watch2(step, {"local": torch.tensor(0.1 if step >= 12 else 2.0)})
    assert watch2.found["local"]["step"] == 12


def test_pix2rep_trains_its_wide_output_map(tmp_path):
    """The pixel loss reaches the full-resolution conv block of out_width channels (one step moves
    it); a run written before out_width existed (no such key in params.json) reads back as before."""
    from medkit.data.batches import Batch
    torch.manual_seed(0)
    m = build_method("pix2rep", {**TINY, "pixels": 64, "out_width": 12})
    assert m.net.feature_channels == 12 and m.projector[0].in_channels == 12
    before = m.net.final[1].conv.weight.detach().clone()
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    batch = Batch(torch.rand(4, 1, 64, 64), torch.zeros(4, dtype=torch.long), torch.arange(4))
    loss = sum(m.loss(batch, torch.Generator().manual_seed(0), 0).values())
    opt.zero_grad()
    loss.backward()
    assert m.net.final[1].conv.weight.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(m.net.final[1].conv.weight, before)
    cfg = TrainConfig(steps=2, batch_size=4, val_every=0, ckpt_every=2, seed=0)
    old = pretrain(_spec("pix2rep", {**TINY, "pixels": 64, "out_width": 0}, cfg, 64), tmp_path / "old",
                   progress=False)
    params = json.loads((old / "params.json").read_text())
    del params["config"]["out_width"]
    (old / "params.json").write_text(json.dumps(params))
    assert load_pretrained(old).net.out_width == 0
