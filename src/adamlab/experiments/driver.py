"""Tune and run a panel through an executor; the caller (this process) writes every file.

:func:`tune_panel` runs the step-size search of each optimizer that has no fresh tuning record (or
of all, with ``retune=True``) and writes ``tune-<optimizer>.json``. :func:`run_panel` tunes what is
missing, then runs every (optimizer, seed) at the chosen hyper-parameters, writing each result as
it arrives and removing its checkpoint once the result is written.
"""

from __future__ import annotations

import shutil
from concurrent.futures import as_completed
from pathlib import Path

from . import results as store
from .runner import CheckpointError, checkpoint_path, read_checkpoint, train_run
from .specs import PanelSpec
from .tuning import tune_optimizer

__all__ = ["tune_panel", "run_panel"]


def _names(spec: PanelSpec, optimizers) -> list[str]:
    if not optimizers:
        return [o.name for o in spec.optimizers]
    for name in optimizers:
        spec.optimizer(name)  # KeyError naming the panel's optimizers
    return list(optimizers)


def tune_panel(spec: PanelSpec, executor, results, *, optimizers=None, retune=True,
               say=None) -> dict:
    """``{optimizer: tuning record}``; runs (and writes) the searches that are needed."""
    results = Path(results)
    store.check_writable(store.panel_dir(results, spec))
    out = {}
    for name in _names(spec, optimizers):
        rec = None if retune else store.load_tuning(results, spec, name)
        if rec is None:
            rec = tune_optimizer(spec, name, executor, say=say)
            path = store.write_tuning(results, spec, rec)
            if say is not None:
                flag = f"  FLAGGED: still on the {rec['at_edge']} edge" if rec["flagged"] else ""
                say(f"chose {rec['chosen']} for {name} (criterion {rec['chosen_criterion']:.4g}); "
                    f"wrote {path}{flag}")
        out[name] = rec
    return out



def _fresh(path: Path, spec: PanelSpec, hyper: dict) -> bool:
    """The freshness ``adamlab list`` shows: valid, this spec, these hyper-parameters."""
    return store.result_state(path, spec, hyper)[0] == "fresh"

def run_panel(spec: PanelSpec, executor, results, *, optimizers=None, seeds=None,
              resume=False, force=False, progress=False, workers=1, say=None) -> list[Path]:
    """Tune what has no fresh record, then run every (optimizer, seed) that has no fresh result
    (every one with ``force``); returns the files written."""
    results = Path(results)
    store.check_writable(store.panel_dir(results, spec))
    names = _names(spec, optimizers)
    seeds = list(spec.seeds) if seeds is None else list(seeds)
    for s in seeds:
        spec.epochs_of(s)  # KeyError naming the spec's seeds
    ckroot = store.checkpoints_dir(results)
    if resume:  # refuse a checkpoint of another spec before any work starts
        for name in names:
            for s in seeds:
                where = checkpoint_path(ckroot, spec, name, s)
                meta = read_checkpoint(where)
                theirs = None if meta is None else meta.get("identity", {}).get("spec_hash")
                if meta is not None and theirs != spec.spec_hash():
                    raise CheckpointError(
                        f"the checkpoint in {where} belongs to another experiment (spec hash "
                        f"{str(theirs)[:12]}, current {spec.spec_hash()[:12]}); refusing to "
                        f"continue it. Run without --resume to start afresh, or delete {where}.")
    tuning = tune_panel(spec, executor, results, optimizers=names, retune=False, say=say)
    jobs = []
    for name in names:
        for s in seeds:
            done = store.result_path(results, spec, name, s)
            if not force and _fresh(done, spec, tuning[name]["chosen"]):
                if say is not None:
                    say(f"{spec.panel} {name} seed {s}: a fresh result exists ({done}); "
                        "skipped (--force reruns it)")
                continue
            jobs.append((name, s, tuning[name]["chosen"], checkpoint_path(ckroot, spec, name, s)))
    futures = {}
    for i, (name, s, hyper, where) in enumerate(jobs):
        f = executor.submit(train_run, spec, name, hyper, s, checkpoint_dir=str(where),
                            resume=resume, progress=progress, position=i % max(1, workers))
        futures[f] = (name, s, where)
    written, errors = [], []
    for f in as_completed(futures):
        name, s, where = futures[f]
        try:
            run = f.result()
        except Exception as e:  # the other runs still finish and are written
            errors.append(e)
            if say is not None:
                say(f"{spec.panel} {name} seed {s}: FAILED: {e}")
            continue
        path = store.write_result(results, spec, run, tuning[name])
        written.append(path)
        shutil.rmtree(where, ignore_errors=True)
        if say is not None:
            state = (f"DIVERGED at epoch {run['diverged']['epoch']}" if run["diverged"]
                     else f"final cost {run['train_cost'][-1]:.4g}")
            say(f"{spec.panel} {name} seed {s}: {state}, {run['wall_seconds']:.1f} s -> {path}")
    if errors:
        raise errors[0]
    return written
