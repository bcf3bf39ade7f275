"""The thin base of momentum methods (MoCo v2, Med-MoCo, IDEAL), as solo-learn's BaseMomentumMethod.

A query network is trained by the loss; a key network, its momentum copy, is never trained but
follows it after every optimiser step (He et al., CVPR 2020, "MoCo"):

    theta_k <- m theta_k + (1 - m) theta_q        (MoCo: m = 0.999)

The helpers themselves (the frozen copy, the update, MoCo's queue) are in
:mod:`medkit.models.momentum`.
"""
from __future__ import annotations

from torch import nn

from medkit.methods.base import Method
from medkit.models.momentum import ema_update, momentum_copy


class MomentumMethod(Method):
    """A method with a query network ``query``, its momentum copy ``key`` and the EMA update.

    Checkpoints hold ``query.*`` then ``key.*`` (then whatever the subclass registers).

    Args:
        query: the trained network; its U-Net, the weights transferred to segmentation, is
            ``query.net``.
        momentum: m in [0, 1) of the update.
        gather_distributed: see :class:`~medkit.methods.base.Method`.

    Example:
        >>> class Q(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = nn.Linear(2, 2)
        >>> m = MomentumMethod(Q(), momentum=0.9)
        >>> sorted(m.state_dict())
        ['key.net.bias', 'key.net.weight', 'query.net.bias', 'query.net.weight']
    """

    def __init__(self, query: nn.Module, momentum: float, gather_distributed: bool = False) -> None:
        super().__init__(gather_distributed)
        self.query = query
        self.key = momentum_copy(query)
        self.momentum = momentum

    @property
    def net(self) -> nn.Module:
        """The query network's U-Net."""
        return self.query.net

    def after_step(self) -> None:
        """theta_key <- m theta_key + (1 - m) theta_query (buffers copied)."""
        ema_update(self.query, self.key, self.momentum)
