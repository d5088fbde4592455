"""The experiments of §6 (Kingma & Ba 2015): specs, tuning, the runner, results, executors.

* :mod:`~adamlab.experiments.specs`: frozen :class:`PanelSpec` per figure panel and preset
  (``quick``, ``paper``, and ``horizon`` with its :class:`Protocol` for fig1-mnist, fig1-imdb and
  fig2a-mlp), :func:`get_spec`, the spec hash;
* :mod:`~adamlab.experiments.tuning`: the step-size (and momentum) grid search, and successive
  halving at the claim's horizon under a protocol;
* :mod:`~adamlab.experiments.runner`: one run, logging, divergence, checkpoints and resume;
* :mod:`~adamlab.experiments.results`: the JSON store, provenance, the stale-result check;
* :mod:`~adamlab.experiments.executors`: inline, local process pool, Dask;
* :mod:`~adamlab.experiments.grid`: a panel whose grid is the experiment (Figure 4, no tuning):
  binarised MNIST, the VAE, its ELBO evaluation, the records that stand in for tuning;
* :mod:`~adamlab.experiments.driver`: :func:`tune_panel`, :func:`run_panel`;
* :mod:`~adamlab.experiments.compare`: the rule by which the chapters read the curves ("as fast",
  "faster", "a large margin", verdicts);
* :mod:`~adamlab.experiments.cli`: ``adamlab list | run | tune | status``.

Scale and wall time, measured with ``benchmarks/bench_runner.py`` on the project machine (2 cores
of an AMD EPYC shared with other jobs). The quiet column is a run at a 1-minute load average of 3
(the machine's own 2 cores plus one other job); under load 5-10 the times were up to 3x longer.
Per epoch on one core, one BLAS thread, Adam; evaluation = one full-training-set cost:

=========== ================== ============ ========================== =========================
panel       epoch (quiet/load)  evaluation   paper preset               estimate: 1 core, 2 cores
=========== ================== ============ ========================== =========================
fig1-mnist  0.11 s / 0.4-0.6 s  0.04-0.1 s   105 tuning + 405 epochs    1.3 min, 0.7 min (quiet)
fig1-imdb   0.1-0.2 s (load)    0.02 s       245 tuning + 2400 epochs   5-10 min, 3-5 min
fig2a-mlp   8.5 s / 23-28 s     2.3-10 s     144 tuning + 1200 epochs   3.3 h, 1.75 h (quiet)
fig2a-decay as fig2a-mlp        as fig2a-mlp  21 tuning + 60 epochs      12 min (quiet), 43 (load)
fig4        4.4-5.7 s (load)    2.3-2.8 s    60 runs x 100 epochs       9 h, 4.5 h (load 4-7)
=========== ================== ============ ========================== =========================

Counts: tuning epochs are grid points × budget without widenings (each widening round adds
2 points per widened axis); the runs are every optimizer × seed (Fig 2a: seed 0 over 200 epochs,
seeds 1 and 2 over the first 20; Fig 4: no tuning, its 60 grid points over 100 epochs, each
evaluated 12 times on 10,000 examples with 10 latent samples). Processes or threads, MLP steps
per second (quiet): 1 process with 1 BLAS thread 64.5; 2 processes with 1 thread each 120.2
(1.86x); 1 process with 2 BLAS threads 65.8 (1.02x). So the default is one worker process per core, one BLAS thread each. Each
worker also loads its data once (MNIST ~1.5 s, IMDB ~3 s). The longest single run, a 200-epoch
Fig 2a run, takes about 30 min of one core plus 21 evaluations (quiet).

Runner overhead (epoch time over steps × the model's own step on a fixed minibatch, interleaved):
0.97-1.03 for the MLP (target ≤ 1.05 met); 1.3-1.5 for the logistic regressions, whose step takes
only 0.15-0.6 ms, so that gathering the 128 random rows of each minibatch (0.02-0.07 s per epoch)
is 15-30% of a step. The quick presets took, with 2 workers on the loaded machine: fig1-mnist
18 s, fig1-imdb 27 s, fig2a-mlp 92 s (51 s of CPU in all, so about 30 s on 2 idle cores).

The horizon presets (issue #18) train far more: every grid point × 2 schedules to the horizon
for Fig 1 (MNIST 3150 tuning + 810 run epochs, the runner-up on every seed; IMDB 15680 + 4800),
and 10/50/200-epoch rungs for Fig 2a (4230 tuning epochs before widenings, each widening at the
last rung adding 2 × 200; then 200 run epochs, since seed 0's chosen and runner-up runs are the
search's own last-rung runs, written as results, ``specs.workload``'s ``runs_from_search``).
Measured before the runs, one core, one BLAS thread, load 3.5: an epoch with its evaluation took
0.18 s (MNIST) and 0.075 s (IMDB), so about 12 min and 26 min of one core, 6-12 and 13-26 min
with 2 workers on the shared machine; Fig 2a about 4.6 h on 2 quiet cores (7-8 s an epoch),
12-18 h loaded (20-30 s).

Names are imported lazily (PEP 562), so that ``import adamlab.experiments.executors`` in a fresh
worker process does not import NumPy before the worker has set its BLAS thread count.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "PanelSpec": "specs", "DataSpec": "specs", "ModelSpec": "specs", "OptimizerSpec": "specs",
    "Grid": "specs", "TuneSpec": "specs", "Protocol": "specs", "get_spec": "specs", "PANELS": "specs",
    "PRESETS": "specs", "SpecError": "specs", "describe": "specs",
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
