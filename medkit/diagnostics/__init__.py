"""Collapse diagnostics: pure functions of an (N, D) embedding matrix.

Each docstring states the value for healthy (isotropic) and for collapsed embeddings.
"""
from __future__ import annotations

from medkit.diagnostics.rank import (alignment, collapsed_fraction, dead_fraction, effective_rank_cov, normalized_std,
                                     rankme, uniformity)
from medkit.diagnostics.spectrum import correlation_matrix, spectrum

__all__ = ["alignment", "collapsed_fraction", "correlation_matrix", "dead_fraction",
           "effective_rank_cov", "normalized_std", "rankme", "spectrum", "uniformity"]
