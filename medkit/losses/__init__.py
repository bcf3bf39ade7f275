"""Losses: small functions from embeddings to a scalar, each with its formula, shapes and paper.

Shapes are checked; a wrong shape raises ``ValueError`` with the shapes received.
"""
from __future__ import annotations

from medkit.losses.barlow import barlow_twins
from medkit.losses.infonce import moco_info_nce, nt_xent
from medkit.losses.supcon import partition_contrastive

__all__ = ["barlow_twins", "moco_info_nce", "nt_xent", "partition_contrastive"]
