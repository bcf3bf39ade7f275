"""Collective operations across training processes, for the layers that must not know the engine.

Losses and the whitening layer gather across processes only when their caller asks
(``gather_distributed=True``); these functions are what they call then. Outside a process group
they are the identity.
"""
from medkit.comm.gather import active, gather, gather_nograd, local_rows, mean_over_processes, rank

__all__ = ["active", "gather", "gather_nograd", "local_rows", "mean_over_processes", "rank"]
