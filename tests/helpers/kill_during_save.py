"""Train the tiny U-Net of tests/engine/test_loop.py and kill this process (SIGKILL) in the middle
of writing its second checkpoint: half the bytes are in the temporary file, none renamed.

    python tests/helpers/kill_during_save.py RUN_DIR
"""
from __future__ import annotations

import os
import signal
import sys

import torch

import medkit.engine.checkpoints as checkpoints
from medkit.data.phantom import LABELS, make_phantom
from medkit.data.slices import make_slices
from medkit.engine.config import TrainConfig
from medkit.engine.device import seed_everything
from medkit.engine.fit import fit_segmentation
from medkit.models import build_model

real_save, calls = torch.save, []


def dying_save(obj, f, *a, **k):
    target = os.readlink(f"/proc/self/fd/{f.fileno()}")  # the temporary file beside checkpoint.pt
    if ".checkpoint.pt." in target:
        calls.append(target)
        if len(calls) == 2:  # the checkpoint of step 10: write half of it, then die
            real_save(obj, f, *a, **k)
            f.flush()
            f.truncate(f.tell() // 2)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *a, **k)


checkpoints.torch.save = dying_save
tiny = make_slices(make_phantom(3, seed=0, frames="ed", size=64), LABELS, image_size=32)
seed_everything(0)
model = build_model("unet-small", 4)
cfg = TrainConfig(steps=12, batch_size=4, ckpt_every=5, log_every=2, val_every=4, device="cpu")
fit_segmentation(model, tiny, cfg, sys.argv[1], val=tiny, progress=False)
