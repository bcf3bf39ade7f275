"""The momentum base: one EMA update and one ``net`` for MoCo v2, Med-MoCo and IDEAL; checkpoint keys
unchanged by the refactor (query.*, key.*, then MoCo's queue.*)."""
from __future__ import annotations

import pytest
import torch

from medkit.methods import build_method
from medkit.methods.momentum import MomentumMethod

TINY = {"channels": (8, 16, 32, 64)}


@pytest.mark.parametrize("name, over, parts", [
    ("moco_v2", {"queue": 16}, ["query", "key", "queue"]),
    ("med_moco", {"queue": 16, "whitening_groups": 16}, ["query", "key", "queue"]),
    ("ideal", {"feature_level": 1}, ["query", "key"]),
])
def test_momentum_methods_share_the_base_and_keep_their_checkpoint_keys(name, over, parts):
    torch.manual_seed(0)
    m = build_method(name, {**TINY, **over})
    assert isinstance(m, MomentumMethod) and m.net is m.query.net and m.momentum == m.cfg.momentum
    keys = list(m.state_dict())
    assert list(dict.fromkeys(k.split(".")[0] for k in keys)) == parts  # in this order, as before
    query = [k[len("query."):] for k in keys if k.startswith("query.")]
    assert query == [k[len("key."):] for k in keys if k.startswith("key.")]  # the key net mirrors the query net
    assert query[0] == "net.encoder.0.0.conv.weight"  # the U-Net under query.net, as in older checkpoints
    if name == "med_moco":  # the whitening's running statistics are checkpointed, under the same names
        assert {"query.whiten.running_mean", "query.whiten.running_whiten"} <= set(keys)
    if "queue" in parts:
        assert {"queue.keys", "queue.ptr"} <= set(keys)


def test_after_step_is_the_ema_update_of_the_key_net():
    torch.manual_seed(0)
    m = build_method("moco_v2", {**TINY, "queue": 16, "momentum": 0.9})
    with torch.no_grad():
        for p in m.query.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in m.key.state_dict().items()}
    m.after_step()
    query = dict(m.query.named_parameters())
    for k, p in m.key.named_parameters():
        torch.testing.assert_close(p, 0.9 * before[k] + 0.1 * query[k])
        assert not p.requires_grad
    for k, b in m.key.named_buffers():  # BatchNorm statistics are copied, not averaged
        torch.testing.assert_close(b, dict(m.query.named_buffers())[k])
