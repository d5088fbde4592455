"""The experiments of §6 (Kingma & Ba 2015): specs, tuning, the runner, results, executors.

* :mod:`~adamlab.experiments.specs`: frozen :class:`PanelSpec` per figure panel and preset
  (``quick``, ``paper``), :func:`get_spec`, the spec hash;
* :mod:`~adamlab.experiments.tuning`: the step-size (and momentum) grid search;
* :mod:`~adamlab.experiments.runner`: one run, logging, divergence, checkpoints and resume;
* :mod:`~adamlab.experiments.results`: the JSON store, provenance, the stale-result check;
* :mod:`~adamlab.experiments.executors`: inline, local process pool, Dask;
* :mod:`~adamlab.experiments.driver`: :func:`tune_panel`, :func:`run_panel`;
* :mod:`~adamlab.experiments.cli`: ``adamlab list | run | tune | status``.

Scale and wall time, measured with ``benchmarks/bench_runner.py`` on the project machine (2 cores
of an AMD EPYC shared with other jobs; 1-minute load average 4-10 during the measurements, so
the times swing by 3x between runs). Per epoch on one core, one BLAS thread, Adam:

=========== ============ ============= ========================= ================================
panel       epoch        evaluation    paper preset (epochs)     estimate, one core
=========== ============ ============= ========================= ================================
fig1-mnist  0.1-0.6 s    0.04-0.1 s    105 tuning + 405 runs     2-5 min
fig1-imdb   0.1-0.2 s    0.02 s        245 tuning + 2400 runs    5-10 min
fig2a-mlp   7.6-28 s     1.5-10 s      144 tuning + 1200 runs    3-11 h
=========== ============ ============= ========================= ================================

(7.6 s per MLP epoch is 469 steps at the 61.6 steps/s measured at a quiet moment; 23-28 s at
load 5-10.) On two idle cores, two worker processes halve these; on the loaded machine two
processes gave 1.04-1.06x the throughput of one, and one process with two BLAS threads was 2-5x
*slower* than with one (29 and 3.7 steps/s against 62 and 20), so processes with one BLAS
thread each are the default. Each worker also loads its data once (MNIST ~1.5 s, IMDB ~3 s). The
longest single run is a 200-epoch Fig 2a run: 25 min to 1.6 h of one core, plus 21 evaluations.
The runner adds 0-3% to the MLP's own step (ratio 0.97-1.03); for the logistic regressions,
whose step takes only 0.15-0.6 ms, gathering each minibatch's 128 random rows is 15-30% of a
step and the ratio is 1.3-1.5. The quick presets took, with 2 workers on the loaded machine:
fig1-mnist 18 s, fig1-imdb 27 s, fig2a-mlp see the report of issue 12.

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
