"""The paper's step-size search (§6: "searched over a dense grid", best reported).

For one optimizer of a panel, every point of its grid (the step sizes α of ``OptimizerSpec.lr``,
crossed with the momenta of ``OptimizerSpec.momentum`` where it has one) runs
``spec.tune.budget_epochs`` epochs from the shared initialisation of seed ``spec.tune.seed``. The
criterion is the average minibatch training cost over the last budget epoch (the cost the figures
plot); a diverged point scores +inf. The lowest wins (ties: the first in grid order).

If the winner lies on an edge of a grid, the grid is widened on that side by ``widen_by`` exponents
and the new points are run, at most ``max_widenings`` times (a momentum grid stops at its bounds,
0.999 ≥ μ ≥ 0 for the panels). A winner still on an edge afterwards (or on a bound) is flagged in
the record: ``at_edge`` names the axis and the side in terms of the value (``"high"`` momentum is
μ near 1). The record holds the initial grid, the
budget, the criterion, every point's result, the widenings and the choice.

Each finished point is saved at once to a partial record, ``tune-<optimizer>.json`` in the
panel's checkpoints folder (:func:`partial_path`, written atomically, keyed by the spec hash);
with ``resume=True`` a search skips the points saved there, and refuses a partial record of
another spec. The driver removes it once the tuning record is written.

Under a spec's :class:`~adamlab.experiments.specs.Protocol` (issue #18) the search is
:func:`tune_halving`: successive halving over the protocol's rungs, the schedule a grid axis, the
criterion the window mean at each rung's budget, widening at the last rung, and a runner-up.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .executors import as_completed
import shutil

from .runner import CheckpointError, atomic_write_json, hyper_points, train_run
from .specs import PanelSpec, survivors

__all__ = ["tune_optimizer", "tune_halving", "TuningError", "partial_path", "partial_points",
           "window_mean", "runs_path"]


class TuningError(RuntimeError):
    """Every grid point diverged: there is nothing to choose."""


def tune_point(spec: PanelSpec, optimizer: str, hyper: dict) -> dict:
    """One grid point: a budget-length run; returns the parts of its record the tuning keeps."""
    r = train_run(spec, optimizer, hyper, spec.tune.seed, epochs=spec.tune.budget_epochs)
    crit = r["train_cost"][-1] if (r["diverged"] is None and r["train_cost"]) else math.inf
    return {"hyper": r["hyper"], "criterion": crit if math.isfinite(crit) else None,
            "diverged": r["diverged"], "train_cost": r["train_cost"],
            "full_cost_epochs": r["full_cost_epochs"], "full_cost": r["full_cost"],
            "wall_seconds": r["wall_seconds"], "machine": r["machine"]}


def partial_path(ckroot, spec: PanelSpec, optimizer: str) -> Path:
    """Where the finished points of an unfinished search of ``optimizer`` are saved."""
    return Path(ckroot) / spec.panel / spec.preset / f"tune-{optimizer}.json"


def last_rung_path(partial: Path) -> Path:
    """Where a search under a protocol saves the whole runs of its last rung
    (``tune-<optimizer>.last/`` beside its partial record): runs of the tuning seed to the
    horizon, which :func:`~adamlab.experiments.driver.run_panel` writes as the results of the
    chosen and runner-up settings instead of training them again."""
    return Path(partial).with_suffix(".last")


def partial_points(path: Path, spec: PanelSpec | None = None) -> dict:
    """``{(lr exponent, momentum exponent or None): point}`` saved in ``path`` ({} if none);
    with ``spec``, a record of another spec or an unreadable one raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        points = {(p["k"], p["j"]) if "rung" not in p else
                  (p["k"], p["j"], p["schedule"], p["rung"]): p["point"] for p in rec["points"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        if spec is None:
            return {}
        raise CheckpointError(f"cannot read the partial search {path} ({e}); delete it, or run "
                              "without --resume to start the search afresh") from None
    if spec is not None and rec.get("spec_hash") != spec.spec_hash():
        raise CheckpointError(
            f"the partial search {path} belongs to another experiment (spec hash "
            f"{str(rec.get('spec_hash'))[:12]}, current {spec.spec_hash()[:12]}); refusing to "
            "continue it. Run without --resume to start the search afresh, or delete it.")
    return points


def _save_partial(path: Path, spec: PanelSpec, optimizer: str, done: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    def entry(key, p):
        if len(key) == 2:
            return {"k": key[0], "j": key[1], "point": p}
        return {"k": key[0], "j": key[1], "schedule": key[2], "rung": key[3], "point": p}
    atomic_write_json(path, {"spec_hash": spec.spec_hash(), "optimizer": optimizer,
                             "points": [entry(key, p) for key, p in done.items()]})


def _side(k: int, ks: list) -> str | None:
    return "low" if k == ks[0] else "high" if k == ks[-1] else None


def _label(opt, axis: str, side: str) -> str:
    """The side in terms of the value: a low exponent of 1 − μ is a high momentum."""
    grid = opt.lr if axis == "lr" else opt.momentum
    if grid.kind == "one_minus":
        return {"low": "high", "high": "low"}[side]
    return side


def _score(point) -> float:
    return math.inf if point["criterion"] is None else point["criterion"]


def _edges(opt, lr_ks: list, mom_ks: list, k, j) -> tuple[list, dict]:
    """The (axis, side) that can still grow where the best point ``(k, j)`` is on an edge of
    its grid (sides in exponent terms), and the edges it is on, in terms of the values."""
    at = {"lr": _side(k, lr_ks)}
    if j is not None:
        at["momentum"] = _side(j, mom_ks)
    growable = []
    for axis, side in at.items():
        grid = opt.lr if axis == "lr" else opt.momentum
        ks = lr_ks if axis == "lr" else mom_ks
        bound = grid.k_min if side == "low" else grid.k_max
        if side is not None and (bound is None or
                                 (ks[0] > bound if side == "low" else ks[-1] < bound)):
            growable.append((axis, side))
    return growable, {axis: _label(opt, axis, side) for axis, side in at.items()
                      if side is not None}


def _grow(spec, optimizer, opt, ks: list, axis: str, side: str, widenings: list, say, *,
          at: str = "", **extra) -> list:
    """Widen the grid ``ks`` of ``axis`` on ``side`` (:func:`_widen`), record it in
    ``widenings`` (with ``extra``) and say so; return the new exponents."""
    grid = opt.lr if axis == "lr" else opt.momentum
    new = _widen(opt, spec.tune, ks, axis, side)
    added = [grid.value(q) for q in new]
    widenings.append({"axis": axis, "side": _label(opt, axis, side), "added": added, **extra})
    if say is not None:
        say(f"tune {spec.panel} {optimizer}: best {axis} at the {_label(opt, axis, side)} end "
            f"of its grid{at}; widened by {added}")
    return new


def _widen(opt, t, ks: list, axis: str, side: str) -> list:
    """Add up to ``t.widen_by`` exponents to ``ks`` (the grid of ``axis``) on ``side``, within
    the grid's bounds; return the new exponents."""
    grid = opt.lr if axis == "lr" else opt.momentum
    if side == "low":
        lo = ks[0] - t.widen_by if grid.k_min is None else max(ks[0] - t.widen_by, grid.k_min)
        new = list(range(lo, ks[0]))
        ks[:0] = new
    else:
        top = ks[-1] + t.widen_by if grid.k_max is None else min(ks[-1] + t.widen_by, grid.k_max)
        new = list(range(ks[-1] + 1, top + 1))
        ks.extend(new)
    return new


def _identity(spec: PanelSpec, optimizer: str, opt) -> dict:
    """The fields that say which search a record is: panel, spec and optimizer."""
    return {"panel": spec.panel, "preset": spec.preset, "spec_hash": spec.spec_hash(),
            "optimizer": optimizer, "algorithm": opt.algorithm, "schedule": opt.schedule,
            "fixed": dict(opt.fixed)}


def _grids(opt, lr_ks: list, mom_ks: list) -> dict:
    """A record's grids: the spec's, and the one searched after any widening."""
    def values(axis, ks=None):
        if axis is None:
            return None
        return list(axis.values()) if ks is None else [axis.value(q) for q in ks]
    return {"initial_grid": {"lr": values(opt.lr), "momentum": values(opt.momentum)},
            "final_grid": {"lr": values(opt.lr, lr_ks), "momentum": values(opt.momentum, mom_ks)}}


def tune_optimizer(spec: PanelSpec, optimizer: str, executor, *, say=None, partial=None,
                   resume: bool = False) -> dict:
    """Run the grid search of ``optimizer`` through ``executor``; return the tuning record.

    ``partial``: the file where each finished point is saved (None: nowhere); ``resume``: skip
    the points saved there."""
    if spec.protocol is not None:
        return tune_halving(spec, optimizer, executor, say=say, partial=partial, resume=resume)
    opt = spec.optimizer(optimizer)
    t = spec.tune
    lr_ks = list(opt.lr.exponents())
    mom_ks = list(opt.momentum.exponents()) if opt.momentum is not None else [None]
    done: dict = partial_points(partial, spec) if (partial is not None and resume) else {}
    widenings = []
    rounds = 0
    while True:
        todo = [(k, j) for k in lr_ks for j in mom_ks if (k, j) not in done]
        futures = {}
        for k, j in todo:
            hyper = hyper_points(opt, [k], None if j is None else [j])[0]
            futures[executor.submit(tune_point, spec, optimizer, hyper)] = (k, j)
        for f in as_completed(futures, executor):
            key = futures[f]
            done[key] = f.result()
            if partial is not None:
                _save_partial(Path(partial), spec, optimizer, done)
            if say is not None:
                p = done[key]
                c = "diverged" if p["criterion"] is None else f"{p['criterion']:.4g}"
                say(f"tune {spec.panel} {optimizer} {p['hyper']}: {c}")
        keys = [(k, j) for k in lr_ks for j in mom_ks]
        best = min(keys, key=lambda kj: (_score(done[kj]), keys.index(kj)))
        if not math.isfinite(_score(done[best])):
            raise TuningError(f"every grid point of {optimizer} on {spec.panel} ({spec.preset}) "
                              f"diverged; widen its grid in adamlab.experiments.specs")
        growable, edge = _edges(opt, lr_ks, mom_ks, *best)
        if not growable or rounds >= t.max_widenings:
            break
        rounds += 1
        for axis, side in growable:
            new = _grow(spec, optimizer, opt, lr_ks if axis == "lr" else mom_ks, axis, side,
                        widenings, say)
    keys = [(k, j) for k in lr_ks for j in mom_ks]
    machines = [done[kj].pop("machine") for kj in done]
    chosen = done[best]
    return {
        **_identity(spec, optimizer, opt), "seed": t.seed, "budget_epochs": t.budget_epochs,
        "criterion": t.criterion, **_grids(opt, lr_ks, mom_ks), "widenings": widenings, "widening_rounds": rounds, "max_widenings": t.max_widenings,
        "points": [done[kj] for kj in keys],
        "chosen": chosen["hyper"], "chosen_criterion": chosen["criterion"],
        "at_edge": edge, "flagged": bool(edge),
        "wall_seconds": sum(p["wall_seconds"] for p in done.values()),
        "machine": machines[0], "worker_pids": sorted({m["pid"] for m in machines}),
    }


# ----------------------------------------------------------------------------- the horizon protocol


def window_mean(train_cost, budget: int, window: int) -> float | None:
    """The criterion at a rung of ``budget`` epochs: the mean of the average minibatch costs of
    epochs ``budget - window + 1 .. budget`` (all of them when ``budget < window``); None when
    the run did not complete ``budget`` epochs (it diverged)."""
    if len(train_cost) < budget:
        return None
    v = math.fsum(train_cost[max(0, budget - window):budget]) / min(window, budget)
    return v if math.isfinite(v) else None


def runs_path(ckroot, spec: PanelSpec, optimizer: str) -> Path:
    """The checkpoint folders of a halving search's runs, one per grid point (a later rung
    continues a point from its checkpoint there)."""
    return Path(ckroot) / spec.panel / spec.preset / f"tune-{optimizer}.runs"


def rung_point(spec: PanelSpec, optimizer: str, hyper: dict, budget: int, last: bool,
               where: str | None) -> dict:
    """One grid point at one rung: a run of ``budget`` epochs at the tuning seed, continued from
    the point's checkpoint of an earlier rung where it is still there (rerun from the start
    otherwise: runs are deterministic, the prefix is the same); checkpointed at its end unless the
    rung is the last, whose whole run record is returned under ``run``."""
    r = train_run(spec, optimizer, hyper, spec.tune.seed, epochs=budget, checkpoint_dir=where,
                  resume=where is not None, extend=True, final_checkpoint=not last)
    crit = window_mean(r["train_cost"], budget, spec.protocol.window) \
        if r["diverged"] is None else None
    out = {"hyper": r["hyper"], "epochs": budget, "criterion": crit, "diverged": r["diverged"],
           "train_cost": r["train_cost"], "full_cost_epochs": r["full_cost_epochs"],
           "full_cost": r["full_cost"], "resumed_at_epochs": r["resumed_at_epochs"],
           "wall_seconds": r["wall_seconds"], "machine": r["machine"]}
    if last:  # the whole run: the search saves it for the run phase (last_rung_path)
        out["run"] = r
    return out


def tune_halving(spec: PanelSpec, optimizer: str, executor, *, say=None, partial=None,
                 resume: bool = False) -> dict:
    """Successive halving (Jamieson & Talwalkar 2016) of ``optimizer`` under ``spec.protocol``.

    Every point of the grid (α × μ where momentum is tuned × the protocol's schedules) runs the
    first rung; after each rung the best :func:`~adamlab.experiments.specs.survivors` continue to
    the next. At the last rung (the horizon) a best α or μ on an edge of its grid is widened as in
    :func:`tune_optimizer`, but along the winner's line only: the new values run the last rung
    directly, at the winner's other coordinates and schedule. The record holds every rung's
    criteria (``rungs``: each rung's points in the order kept; ``points``: each point's criteria),
    the choice and the runner-up (the second best of the last rung). Its ``schedule`` is the
    optimizer's own; the schedules searched are ``schedules``, the chosen one in ``chosen``.

    Each finished (point, rung) is saved to ``partial`` at once; ``resume`` skips those saved and
    continues runs from their checkpoints (beside ``partial``, in ``<optimizer>.runs/``). The
    whole runs of the last rung are saved in :func:`last_rung_path`, for the run phase."""
    opt = spec.optimizer(optimizer)
    t, p = spec.tune, spec.protocol
    scheds = list(p.schedules) or [None]
    lr_ks = list(opt.lr.exponents())
    mom_ks = list(opt.momentum.exponents()) if opt.momentum is not None else [None]
    done: dict = partial_points(partial, spec) if (partial is not None and resume) else {}
    runs = None if partial is None else Path(partial).with_suffix(".runs")
    last_runs = None if partial is None else last_rung_path(partial)
    if runs is not None and not resume:
        shutil.rmtree(runs, ignore_errors=True)  # checkpoints of an earlier search
        shutil.rmtree(last_runs, ignore_errors=True)
    final = len(p.rungs) - 1

    def where(key):
        if runs is None:
            return None
        k, j, sch = key
        return str(runs / f"k{k}-j{j}-{sch}")

    def run_rung(r: int, keys: list) -> None:
        budget = p.rungs[r]
        futures = {}
        for key in keys:
            if (*key, r) in done:
                continue
            hyper = hyper_points(opt, [key[0]], None if key[1] is None else [key[1]], key[2])[0]
            f = executor.submit(rung_point, spec, optimizer, hyper, budget, r == final,
                                where(key))
            futures[f] = key
        for f in as_completed(futures, executor):
            key = futures[f]
            pt = f.result()
            run = pt.pop("run", None)
            if run is not None and last_runs is not None:
                last_runs.mkdir(parents=True, exist_ok=True)
                atomic_write_json(last_runs / f"k{key[0]}-j{key[1]}-{key[2]}.json", run)
            done[(*key, r)] = pt
            if partial is not None:
                _save_partial(Path(partial), spec, optimizer, done)
            if say is not None:
                pt = done[(*key, r)]
                c = "diverged" if pt["criterion"] is None else f"{pt['criterion']:.4g}"
                say(f"tune {spec.panel} {optimizer} {pt['hyper']} rung {r + 1}/{final + 1} "
                    f"({budget} epochs): {c}")

    def ranked(r: int, keys: list) -> list:
        return sorted(keys, key=lambda key: (_score(done[(*key, r)]), keys.index(key)))

    keys = [(k, j, sch) for sch in scheds for k in lr_ks for j in mom_ks]
    rungs = []
    for r in range(final):
        run_rung(r, keys)
        order = ranked(r, keys)
        keep = order[:survivors(len(keys), p)]
        rungs.append({"epochs": p.rungs[r], "points": len(keys),
                      "kept": [done[(*key, r)]["hyper"] for key in keep]})
        keys = keep
    widenings, rounds = [], 0
    while True:
        run_rung(final, keys)
        order = ranked(final, keys)
        best = order[0]
        if not math.isfinite(_score(done[(*best, final)])):
            raise TuningError(f"every grid point of {optimizer} on {spec.panel} ({spec.preset}) "
                              f"diverged at the last rung; widen its grid in "
                              "adamlab.experiments.specs")
        k0, j0, s0 = best
        growable, edge = _edges(opt, lr_ks, mom_ks, k0, j0)
        if not growable or rounds >= t.max_widenings:
            break
        rounds += 1
        for axis, side in growable:
            new = _grow(spec, optimizer, opt, lr_ks if axis == "lr" else mom_ks, axis, side,
                        widenings, say, at=" at the last rung", schedule=s0)
            # the new values beside the winner, at its other coordinates and schedule
            keys += [(q, j0, s0) if axis == "lr" else (k0, q, s0) for q in new]
    order = ranked(final, keys)
    rungs.append({"epochs": p.rungs[final], "points": len(keys),
                  "kept": [done[(*key, final)]["hyper"] for key in order]})
    best = done[(*order[0], final)]
    second = next((done[(*key, final)] for key in order[1:]
                   if math.isfinite(_score(done[(*key, final)]))), None)
    machines = [pt.pop("machine") for pt in done.values() if "machine" in pt]
    points = []
    for key in [(k, j, sch) for sch in scheds for k in lr_ks for j in mom_ks]:
        ran = [r for r in range(final + 1) if (*key, r) in done]
        if not ran:
            continue  # a widened value that ran beside the winner only
        last = done[(*key, ran[-1])]
        points.append({**last, "rungs": [{"epochs": p.rungs[r],
                                          "criterion": done[(*key, r)]["criterion"]}
                                         for r in ran]})
    if runs is not None:
        shutil.rmtree(runs, ignore_errors=True)
    return {
        **_identity(spec, optimizer, opt), "seed": t.seed, "budget_epochs": p.rungs[final],
        "criterion": t.criterion, "protocol": spec.to_dict()["protocol"],
        "schedules": scheds if scheds != [None] else [opt.schedule],
        **_grids(opt, lr_ks, mom_ks), "widenings": widenings, "widening_rounds": rounds, "max_widenings": t.max_widenings,
        "rungs": rungs, "points": points,
        "chosen": best["hyper"], "chosen_criterion": best["criterion"],
        "runner_up": None if second is None else second["hyper"],
        "runner_up_criterion": None if second is None else second["criterion"],
        "at_edge": edge, "flagged": bool(edge),
        "wall_seconds": sum(pt["wall_seconds"] for pt in done.values()),
        "machine": machines[0] if machines else None,
        "worker_pids": sorted({m["pid"] for m in machines}),
    }
