"""The experiments of §6 (Kingma & Ba 2015): specs, tuning, the runner, results, executors.

* :mod:`~adamlab.experiments.specs`: frozen :class:`PanelSpec` per figure panel and preset
  (``quick``, ``paper``), :func:`get_spec`, the spec hash;
* :mod:`~adamlab.experiments.tuning`: the step-size (and momentum) grid search;
* :mod:`~adamlab.experiments.runner`: one run, logging, divergence, checkpoints and resume;
* :mod:`~adamlab.experiments.results`: the JSON store, provenance, the stale-result check;
* :mod:`~adamlab.experiments.executors`: inline, local process pool, Dask;
* :mod:`~adamlab.experiments.driver`: :func:`tune_panel`, :func:`run_panel`;
* :mod:`~adamlab.experiments.cli`: ``adamlab list | run | tune | status``.

Names are imported lazily (PEP 562), so that ``import adamlab.experiments.executors`` in a fresh
worker process does not import NumPy before the worker has set its BLAS thread count.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "PanelSpec": "specs", "DataSpec": "specs", "ModelSpec": "specs", "OptimizerSpec": "specs",
    "Grid": "specs", "TuneSpec": "specs", "get_spec": "specs", "PANELS": "specs",
    "PRESETS": "specs", "SpecError": "specs",
    "train_run": "runner", "CheckpointError": "runner",
    "tune_optimizer": "tuning", "TuningError": "tuning",
    "load_results": "results", "StaleResultError": "results", "results_dir": "results",
    "make_executor": "executors", "InlineExecutor": "executors",
    "tune_panel": "driver", "run_panel": "driver",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
