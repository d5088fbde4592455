"""Tune and run a panel through an executor; the caller (this process) writes every file.

:func:`tune_panel` runs the step-size search of each optimizer that has no fresh tuning record (or
of all, with ``retune=True``) and writes ``tune-<optimizer>.json``. :func:`run_panel` tunes what is
missing, then runs every (optimizer, seed) at the chosen hyper-parameters, writing each result as
it finishes (whatever the executor) and removing its checkpoint once the result is written.
Under a protocol (issue #18) it also runs the runner-up setting of each search on the protocol's
runner-up seeds (``<optimizer>-seed<k>-runnerup.json``), so that every verdict can show how it
depends on the choice.

A sweep that stops early (an interrupt, a disk that is full, a lost cluster) stops its executor
(queued calls cancelled, running ones killed) and re-raises; what it kept on disk by then, the
results written, the grid points saved and the runs with a checkpoint, is in the :class:`Kept`
the caller passed.
"""

from __future__ import annotations

import errno
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import executors
from . import results as store
from .grid import untuned
from .runner import CheckpointError, checkpoint_path, read_checkpoint, train_run
from .specs import PanelSpec, SpecError
from .tuning import last_rung_path, partial_path, partial_points, tune_optimizer

__all__ = ["tune_panel", "run_panel", "Kept", "plan"]


@dataclass
class Kept:
    """What a sweep has on disk: results written, searches finished, searches and runs that can
    be continued (``partial``: optimizer -> grid points saved; ``checkpoints``: run folders)."""

    results: list = field(default_factory=list)
    tuned: list = field(default_factory=list)
    partial: dict = field(default_factory=dict)
    checkpoints: list = field(default_factory=list)
    todo: list = field(default_factory=list)  # (optimizer, seed) of the runs not written
    todo_runner_up: list = field(default_factory=list)  # the same, of the runner-up runs

    def resumable(self) -> bool:
        return bool(self.checkpoints) or any(self.partial.values())

    def summary(self) -> str:
        def n(k, what):
            return f"{k} {what}{'' if k == 1 else 's'}"
        parts = [n(len(self.results), "finished result")]
        if self.tuned:
            parts.append(n(len(self.tuned), "tuning record"))
        points = sum(self.partial.values())
        if points:
            parts.append(n(points, "finished grid point"))
        parts.append(n(len(self.checkpoints), "checkpoint"))
        return "kept " + ", ".join(parts[:-1]) + " and " + parts[-1]


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def _names(spec: PanelSpec, optimizers) -> list[str]:
    if not optimizers:
        return [o.name for o in spec.optimizers]
    for name in optimizers:
        spec.optimizer(name)  # KeyError naming the panel's optimizers
    return _unique(optimizers)


def _stopped(executor, kept: Kept, ckroot: Path, spec: PanelSpec, names) -> None:
    """Stop the executor; note the searches and runs that can be continued."""
    executors.stop(executor)
    for name in names:
        kept.partial[name] = len(partial_points(partial_path(ckroot, spec, name)))
    runs = [(name, s, "chosen") for name, s in kept.todo] + \
        [(name, s, "runner_up") for name, s in kept.todo_runner_up]
    kept.checkpoints = [w for w in (checkpoint_path(ckroot, spec, *run) for run in runs)
                        if (w / "checkpoint.json").is_file()]


def tune_panel(spec: PanelSpec, executor, results, *, optimizers=None, retune=True,
               resume=False, say=None, kept: Kept | None = None) -> dict:
    """``{optimizer: tuning record}``; runs (and writes) the searches that are needed. Each
    finished grid point is saved beside the checkpoints; ``resume`` continues a search from them."""
    if spec.tune is None:
        raise SpecError(f"{spec.panel} has no step-size search: its grid is the experiment. "
                        f"Run it with `adamlab run {spec.panel} --preset {spec.preset}`")
    results = Path(results)
    kept = Kept() if kept is None else kept
    store.check_writable(store.panel_dir(results, spec))
    ckroot = store.checkpoints_dir(results)
    out = {}
    names = _names(spec, optimizers)
    try:
        for name in names:
            rec = None if retune else store.load_tuning(results, spec, name)
            if rec is None:
                partial = partial_path(ckroot, spec, name)
                rec = tune_optimizer(spec, name, executor, say=say, partial=partial,
                                     resume=resume)
                path = store.write_tuning(results, spec, rec)
                partial.unlink(missing_ok=True)
                shutil.rmtree(partial.with_suffix(".runs"), ignore_errors=True)
                kept.tuned.append(name)
                if say is not None:
                    flag = f"  FLAGGED: still on the {rec['at_edge']} edge" if rec["flagged"] else ""
                    second = "" if rec.get("runner_up") is None else (
                        f"; runner-up {rec['runner_up']} ({rec['runner_up_criterion']:.4g})")
                    say(f"chose {rec['chosen']} for {name} (criterion "
                        f"{rec['chosen_criterion']:.4g}{second}); wrote {path}{flag}")
            out[name] = rec
    except BaseException:
        _stopped(executor, kept, ckroot, spec, names)
        raise
    return out


def _fresh(path: Path, spec: PanelSpec, hyper: dict | None) -> bool:
    """The freshness ``adamlab list`` shows: valid, this spec, these hyper-parameters."""
    return store.result_state(path, spec, hyper)[0] == "fresh"


def plan(spec: PanelSpec, results, *, optimizers=None, seeds=None, force=False,
         retune=False) -> int:
    """The most calls a sweep submits at once: the runs to do, or the first grid of a search that
    is needed (the CLI caps ``--workers`` at it)."""
    results = Path(results)
    names = _names(spec, optimizers)
    seeds = list(spec.seeds) if seeds is None else _unique(seeds)
    most, runs = 0, 0
    for name in names:
        if spec.tune is None:  # a fixed grid: each entry runs at its one point
            rec = untuned(spec, [name])[name]
        else:
            rec = None if retune else store.load_tuning(results, spec, name)
        todo = store.runs_of(spec, seeds)
        if rec is None:
            opt = spec.optimizer(name)
            n = len(opt.lr.values()) * (len(opt.momentum.values())
                                        if opt.momentum is not None else 1)
            if spec.protocol is not None:
                n *= max(1, len(spec.protocol.schedules))
            most = max(most, n)
            runs += 0 if retune else len(todo)
        else:
            runs += sum(force or not _fresh(store.result_path(results, spec, name, s, role), spec,
                                            store.setting_of(rec, role)) for s, role in todo)
    return max(most, runs)


def _last_rung_run(ckroot: Path, spec: PanelSpec, name: str, seed: int, role: str,
                   hyper: dict) -> dict | None:
    """The search's own run of this (optimizer, seed, setting), if it has one: under a protocol
    the tuning seed ran the chosen and runner-up settings to the last rung, and when that rung
    is the seed's whole run the record is the result (bit for bit what a new run would give).
    None when it is not such a run, or its file is gone or unreadable (then it is run again)."""
    p = spec.protocol
    if p is None or seed != spec.tune.seed or spec.epochs_of(seed) != p.rungs[-1]:
        return None
    for f in sorted(last_rung_path(partial_path(ckroot, spec, name)).glob("*.json")):
        try:
            run = json.loads(f.read_text(encoding="utf8"))
        except (OSError, ValueError):
            continue
        if (isinstance(run, dict) and run.get("spec_hash") == spec.spec_hash()
                and run.get("optimizer") == name and run.get("seed") == seed
                and run.get("hyper") == hyper and run.get("epochs") == spec.epochs_of(seed)):
            return {**run, "role": role, "from_search": True}
    return None


def _drop_checkpoint(where: Path) -> None:
    """The JSON first: an interrupted removal leaves no half checkpoint to resume from."""
    (where / "checkpoint.json").unlink(missing_ok=True)
    shutil.rmtree(where, ignore_errors=True)


def run_panel(spec: PanelSpec, executor, results, *, optimizers=None, seeds=None,
              resume=False, force=False, progress=False, workers=1, say=None,
              kept: Kept | None = None) -> list[Path]:
    """Tune what has no fresh record, then run every (optimizer, seed) that has no fresh result
    (every one with ``force``); returns the files written. Under a protocol, a run that the
    search already made (the tuning seed to the last rung, at the chosen or runner-up setting) is
    written from the search's record instead of being trained again."""
    results = Path(results)
    kept = Kept() if kept is None else kept
    store.check_writable(store.panel_dir(results, spec))
    names = _names(spec, optimizers)
    seeds = list(spec.seeds) if seeds is None else _unique(seeds)
    for s in seeds:
        spec.epochs_of(s)  # KeyError naming the spec's seeds
    ckroot = store.checkpoints_dir(results)
    todo = store.runs_of(spec, seeds)
    if resume:  # refuse a checkpoint of another spec before any work starts
        for name in names:
            for s, role in todo:
                where = checkpoint_path(ckroot, spec, name, s, role)
                meta = read_checkpoint(where)
                theirs = None if meta is None else meta.get("identity", {}).get("spec_hash")
                if meta is not None and theirs != spec.spec_hash():
                    raise CheckpointError(
                        f"the checkpoint in {where} belongs to another experiment (spec hash "
                        f"{str(theirs)[:12]}, current {spec.spec_hash()[:12]}); refusing to "
                        f"continue it. Run without --resume to start afresh, or delete {where}.")
    kept.todo = [(name, s) for name in names for s, role in todo if role == "chosen"]
    kept.todo_runner_up = [(name, s) for name in names for s, role in todo if role != "chosen"]
    tuning = untuned(spec, names) if spec.tune is None else tune_panel(
        spec, executor, results, optimizers=names, retune=False, resume=resume, say=say, kept=kept)
    jobs, written = [], []
    for name in names:
        for s, role in todo:
            left = kept.todo if role == "chosen" else kept.todo_runner_up
            hyper = store.setting_of(tuning[name], role)
            what = f"{spec.panel} {name} seed {s}" + (" (runner-up)" if role != "chosen" else "")
            if hyper is None:  # a search with one finite point has no runner-up
                left.remove((name, s))
                if say is not None:
                    say(f"{what}: the search has no runner-up; skipped")
                continue
            done = store.result_path(results, spec, name, s, role)
            if not force and _fresh(done, spec, hyper):
                left.remove((name, s))
                if say is not None:
                    say(f"{what}: a fresh result exists ({done}); skipped (--force reruns it)")
                continue
            search_run = _last_rung_run(ckroot, spec, name, s, role, hyper)
            if search_run is not None:
                path = store.write_result(results, spec, search_run, tuning[name])
                written.append(path)
                kept.results.append(path)
                left.remove((name, s))
                if say is not None:
                    say(f"{what}: the search ran it to the horizon; its run written -> {path}")
                continue
            jobs.append((name, s, role, hyper, checkpoint_path(ckroot, spec, name, s, role)))
    futures, errors = {}, []
    try:
        for i, (name, s, role, hyper, where) in enumerate(jobs):
            f = executor.submit(train_run, spec, name, hyper, s, checkpoint_dir=str(where),
                                resume=resume, progress=progress, position=i % max(1, workers),
                                role=role)
            futures[f] = (name, s, role, where)
        for f in executors.as_completed(futures, executor):
            name, s, role, where = futures[f]
            what = f"{spec.panel} {name} seed {s}" + (" (runner-up)" if role != "chosen" else "")
            try:
                run = f.result()
            except Exception as e:  # the other runs still finish and are written
                errors.append(e)
                if say is not None:
                    say(f"{what}: FAILED: {e}")
                continue
            if not store.panel_dir(results, spec).is_dir():  # not recreated: say so
                raise FileNotFoundError(errno.ENOENT, "the results folder vanished during the "
                                        "sweep", str(store.panel_dir(results, spec)))
            path = store.write_result(results, spec, run, tuning[name])
            written.append(path)
            kept.results.append(path)
            (kept.todo if role == "chosen" else kept.todo_runner_up).remove((name, s))
            _drop_checkpoint(where)
            if say is not None:
                state = (f"DIVERGED at epoch {run['diverged']['epoch']}" if run["diverged"]
                         else f"final cost {run['train_cost'][-1]:.4g}")
                say(f"{what}: {state}, {run['wall_seconds']:.1f} s -> {path}")
    except BaseException:
        _stopped(executor, kept, ckroot, spec, names)
        raise
    if errors:
        raise errors[0]
    if spec.protocol is not None:  # every run is written: the search's last runs are spent
        for name in names:
            shutil.rmtree(last_rung_path(partial_path(ckroot, spec, name)), ignore_errors=True)
    return written
