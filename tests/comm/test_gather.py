"""Outside a process group the collectives are the identity (the two-process behaviour is tested in
tests/engine/test_distributed.py under torchrun)."""
from __future__ import annotations

import torch

from medkit.comm import active, gather, gather_nograd, local_rows, mean_over_processes


def test_single_process_collectives_are_the_identity():
    x = torch.randn(3, 4, requires_grad=True)
    assert not active()
    assert gather(x) is x and torch.equal(gather_nograd(x), x)
    assert torch.equal(local_rows(3), torch.arange(3))
    assert float(mean_over_processes(torch.tensor(2.5))) == 2.5
