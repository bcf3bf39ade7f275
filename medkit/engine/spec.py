"""A run spec passed whole: what data (:class:`~medkit.data.datasets.DataConfig`), how long and how
fast (:class:`~medkit.engine.config.TrainConfig`) and, for pretraining, which method with which
options. It is the one way to build a run's ``params.json``, and a notebook builds it from its
parameters cell in one call (:func:`notebook_spec`) and records that cell in another
(:func:`record_params`).

    >>> spec = RunSpec(DataConfig("phantom", image_size=64), TrainConfig(steps=100), "simclr")
    >>> spec.params("pretrain")["image_size"]
    64
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from medkit.data.datasets import DataConfig
from medkit.engine.config import TrainConfig
from medkit.engine.runs import write_json
from medkit.methods import method_config

# where and how fast a run ran, not what it is: left out of params.json, so that a run resumes on
# another device or with compilation switched on
RUNTIME_FIELDS = ("device", "compile")


@dataclass(frozen=True)
class RunSpec:
    """What a run is.

    Attributes:
        data: the data and how it is cut.
        train: the schedule and optimisation.
        method: a method name (pretraining runs; empty otherwise).
        options: the method's config keys (unknown keys fail with their names when it is built).
    """

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def method_config(self):
        """The method's frozen config (defaults with ``options``)."""
        return method_config(self.method, dict(self.options))

    def params(self, command: str, **extra: Any) -> dict:
        """The ``params.json`` of a run of ``command``: the command, ``extra`` (what defines the run
        besides data and schedule), the data and the schedule, without :data:`RUNTIME_FIELDS`.
        A data seed other than the training seed is recorded as ``data_seed``."""
        schedule = {k: v for k, v in asdict(self.train).items() if k not in RUNTIME_FIELDS}
        out = {"command": command, **extra, **self.data.params(), **schedule}
        if self.data.seed != self.train.seed:
            out["data_seed"] = self.data.seed
        return out


def notebook_params(namespace: Mapping[str, Any]) -> dict:
    """A notebook's parameters: the UPPER_CASE names of its namespace whose values are JSON types
    (its papermill parameters cell, by the kit's convention), without ``RUN_DIR`` (where it ran)."""
    def is_json(v: Any) -> bool:
        try:
            json.dumps(v)
            return True
        except (TypeError, ValueError):
            return False
    return {k: v for k, v in namespace.items()
            if k.isupper() and not k.startswith("_") and k != "RUN_DIR" and is_json(v)}


def notebook_schedule(steps: int, batch_size: int, seed: int = 0, device: str = "auto", checks: int = 4,
                      logs: int = 20) -> TrainConfig:
    """The schedule of a notebook's short training: ``checks`` validations (or collapse checks)
    and ``logs`` history entries over ``steps`` steps, one checkpoint at the end."""
    return TrainConfig(steps=steps, batch_size=batch_size, val_every=max(steps // checks, 1), ckpt_every=steps,
                       log_every=max(steps // logs, 1), seed=seed, device=device)


def notebook_spec(namespace: Mapping[str, Any], checks: int = 4, logs: int = 20) -> RunSpec:
    """The run spec of a notebook's parameters cell: ``DATA_DIR``, ``IMAGE_SIZE``, ``SEED`` (data and
    training), ``DEVICE``, ``STEPS``, ``BATCH_SIZE``, ``METHOD`` and ``OPTIONS`` where present (the
    data and schedule defaults otherwise).

        >>> spec = notebook_spec(globals())   # in a notebook, after its parameters cell
    """
    p = notebook_params(namespace)
    seed = p.get("SEED") if p.get("SEED") is not None else 0
    data = DataConfig(p.get("DATA_DIR", DataConfig.data), image_size=p.get("IMAGE_SIZE", DataConfig.image_size),
                      seed=seed)
    steps = p.get("STEPS") or TrainConfig.steps
    train = notebook_schedule(steps, p.get("BATCH_SIZE", TrainConfig.batch_size), seed,
                              p.get("DEVICE", TrainConfig.device), checks, logs)
    return RunSpec(data, train, p.get("METHOD", ""), dict(p.get("OPTIONS") or {}))


def record_params(run_dir: str | Path | None, namespace: Mapping[str, Any]) -> dict:
    """Write a notebook's parameters (:func:`notebook_params`) to ``run_dir/params.json`` when
    ``run_dir`` is given (a study's run folder); returns them."""
    params = notebook_params(namespace)
    if run_dir:
        write_json(Path(run_dir) / "params.json", params)
    return params
