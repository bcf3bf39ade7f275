"""medkit's MoCo v2 and SimCLR steps against the same steps built from lightly's heads and losses.

What a user would otherwise write: lightly (Susmelj et al., https://github.com/lightly-ai/lightly)
provides ``MoCoProjectionHead``, ``SimCLRProjectionHead``, ``NTXentLoss`` (with a memory bank
for MoCo) and ``update_momentum``. Both sides get the same backbone (the kit's U-Net encoder,
pooled), the same projector sizes with BatchNorm, temperature, queue length and momentum, the
same batch and the same two-view augmentation (medkit's batched views, so that the comparison is
of the step, not of per-sample PIL transforms); both steps run in one process, alternating.

lightly needs torchvision, which does not import beside this workplace's CPU torch 2.13 build, so
it is installed in its own virtual environment and never in CI::

    python -m venv .venv-lightly
    .venv-lightly/bin/pip install torch==2.14.1 torchvision==0.29.1 lightly monai==1.6.1 nibabel scipy \
        scikit-learn pandas tqdm pyyaml matplotlib seaborn
    .venv-lightly/bin/pip install --no-deps -e .
    .venv-lightly/bin/python -m medkit bench --lightly --out bench/lightly
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from medkit.data.views import make_views
from medkit.engine.loop import make_optimizer
from medkit.errors import MedkitError
from medkit.methods import build_method
from medkit.data.batches import Batch
from medkit.methods.base import unet
from medkit.workflows.bench import check_options, machine, paired_times


def _lightly():
    try:
        import lightly.loss
        import lightly.models.modules
        import lightly.models.utils
    except ImportError as e:
        raise MedkitError(f"the lightly comparison needs lightly ({e}); see medkit/workflows/bench_lightly.py for "
                          "its separate environment") from None
    return lightly


class _LightlyMoCo(nn.Module):
    """MoCo v2 as lightly's documentation composes it, symmetrised like medkit's."""

    def __init__(self, channels, hidden: int, dim: int, queue: int, temperature: float, momentum: float) -> None:
        super().__init__()
        lightly = _lightly()
        self.net = unet(channels)
        self.head = lightly.models.modules.MoCoProjectionHead(channels[-1], hidden, dim, batch_norm=True)
        self.net_m, self.head_m = copy.deepcopy(self.net), copy.deepcopy(self.head)
        lightly.models.utils.deactivate_requires_grad(self.net_m)
        lightly.models.utils.deactivate_requires_grad(self.head_m)
        self.criterion = lightly.loss.NTXentLoss(temperature=temperature, memory_bank_size=(queue, dim))
        self.momentum = momentum
        self.update = lightly.models.utils.update_momentum

    def loss(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        q1 = self.head(self.net.encode(x1)[-1].mean((2, 3)))
        q2 = self.head(self.net.encode(x2)[-1].mean((2, 3)))
        with torch.no_grad():
            k1 = self.head_m(self.net_m.encode(x1)[-1].mean((2, 3)))
            k2 = self.head_m(self.net_m.encode(x2)[-1].mean((2, 3)))
        return 0.5 * (self.criterion(q1, k2) + self.criterion(q2, k1))

    def after_step(self) -> None:
        self.update(self.net, self.net_m, self.momentum)
        self.update(self.head, self.head_m, self.momentum)


class _LightlySimCLR(nn.Module):
    def __init__(self, channels, hidden: int, dim: int, temperature: float) -> None:
        super().__init__()
        lightly = _lightly()
        self.net = unet(channels)
        self.head = lightly.models.modules.SimCLRProjectionHead(channels[-1], hidden, dim)
        self.criterion = lightly.loss.NTXentLoss(temperature=temperature)

    def loss(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.criterion(self.head(self.net.encode(x1)[-1].mean((2, 3))),
                              self.head(self.net.encode(x2)[-1].mean((2, 3))))

    def after_step(self) -> None:
        pass


def compare(name: str, size: int = 64, batch: int = 16, repeats: int = 9, queue: int = 4096) -> dict:
    """Median step time of medkit's ``name`` (moco_v2 or simclr) and of the lightly-built step."""
    if name not in ("moco_v2", "simclr"):
        raise MedkitError(f"the lightly comparison covers moco_v2 and simclr, not {name!r}")
    torch.manual_seed(0)
    ours = build_method(name, {"queue": queue} if name == "moco_v2" else {})
    c = ours.cfg
    theirs = (_LightlyMoCo(c.channels, c.proj_hidden, c.proj_dim, queue, c.temperature, c.momentum)
              if name == "moco_v2" else _LightlySimCLR(c.channels, c.proj_hidden, c.proj_dim, c.temperature))
    x = torch.rand(batch, 1, size, size)
    b = Batch(x, torch.arange(batch) % 4, torch.arange(batch) // 4)
    fmt = torch.channels_last
    for m in (ours, theirs):
        m.train()
        m.to(memory_format=fmt)
    opt_ours = make_optimizer([p for p in ours.parameters() if p.requires_grad], lr=1e-4)
    opt_theirs = make_optimizer([p for p in theirs.parameters() if p.requires_grad], lr=1e-4)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)

    def step_ours():
        loss = ours.loss(b, g1, 10**9)["loss"]
        opt_ours.zero_grad(set_to_none=True)
        loss.backward()
        opt_ours.step()
        ours.after_step()

    def step_theirs():
        v = make_views(b.images, *ours.views, g2)  # the same views code on both sides
        loss = theirs.loss(v.x1.contiguous(memory_format=fmt), v.x2.contiguous(memory_format=fmt))
        opt_theirs.zero_grad(set_to_none=True)
        loss.backward()
        opt_theirs.step()
        theirs.after_step()

    ours_s, theirs_s = paired_times([step_ours, step_theirs], repeats)  # alternating: drifts hit both
    import lightly
    return {"method": name, "size": size, "batch": batch, "medkit_s": ours_s, "lightly_s": theirs_s,
            "medkit_over_lightly": ours_s / theirs_s, "lightly": lightly.__version__, "torch": torch.__version__}


def markdown(rows: list[dict]) -> str:
    lines = ["| method | size | batch | medkit step (s) | lightly step (s) | medkit / lightly |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['size']} | {r['batch']} | {r['medkit_s']:.4f} | {r['lightly_s']:.4f} | "
                     f"{r['medkit_over_lightly']:.2f} |")
    return "\n".join(lines) + "\n"


def run_comparison(out: str | Path, sizes: tuple[int, ...] = (64,), batch: int = 16, repeats: int = 9) -> list[dict]:
    """:func:`compare` for moco_v2 and simclr at every size; writes ``out.json`` and ``out.md``."""
    check_options(out, sizes, ("simclr", "moco_v2"), batch, repeats)
    rows = []
    for size in sizes:
        for name in ("simclr", "moco_v2"):
            rows.append(compare(name, size, batch, repeats=repeats))
            print(f"{name} {size}px: medkit {rows[-1]['medkit_s']:.4f} s, lightly {rows[-1]['lightly_s']:.4f} s, "
                  f"ratio {rows[-1]['medkit_over_lightly']:.2f}", flush=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    out.with_suffix(".md").write_text(markdown(rows))
    return rows
