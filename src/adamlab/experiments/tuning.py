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
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .executors import as_completed
from .runner import CheckpointError, atomic_write_json, hyper_points, train_run
from .specs import PanelSpec

__all__ = ["tune_optimizer", "TuningError", "partial_path", "partial_points"]


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


def partial_points(path: Path, spec: PanelSpec | None = None) -> dict:
    """``{(lr exponent, momentum exponent or None): point}`` saved in ``path`` ({} if none);
    with ``spec``, a record of another spec or an unreadable one raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        points = {(p["k"], p["j"]): p["point"] for p in rec["points"]}
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
    atomic_write_json(path, {"spec_hash": spec.spec_hash(), "optimizer": optimizer,
                             "points": [{"k": k, "j": j, "point": p}
                                        for (k, j), p in done.items()]})


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


def tune_optimizer(spec: PanelSpec, optimizer: str, executor, *, say=None, partial=None,
                   resume: bool = False) -> dict:
    """Run the grid search of ``optimizer`` through ``executor``; return the tuning record.

    ``partial``: the file where each finished point is saved (None: nowhere); ``resume``: skip
    the points saved there."""
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
        k, j = best
        # Edges in exponent terms ("low"/"high" exponent), then the sides that can still grow.
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
        edge = {axis: _label(opt, axis, side) for axis, side in at.items() if side is not None}
        if not growable or rounds >= t.max_widenings:
            break
        rounds += 1
        for axis, side in growable:
            grid = opt.lr if axis == "lr" else opt.momentum
            ks = lr_ks if axis == "lr" else mom_ks
            if side == "low":
                lo = ks[0] - t.widen_by if grid.k_min is None else max(ks[0] - t.widen_by,
                                                                       grid.k_min)
                new = list(range(lo, ks[0]))
                ks[:0] = new
            else:
                top = ks[-1] + t.widen_by if grid.k_max is None else min(ks[-1] + t.widen_by,
                                                                         grid.k_max)
                new = list(range(ks[-1] + 1, top + 1))
                ks.extend(new)
            added = [grid.value(q) for q in new]
            widenings.append({"axis": axis, "side": _label(opt, axis, side), "added": added})
            if say is not None:
                say(f"tune {spec.panel} {optimizer}: best {axis} at the "
                    f"{_label(opt, axis, side)} end of its grid; widened by {added}")
    keys = [(k, j) for k in lr_ks for j in mom_ks]
    machines = [done[kj].pop("machine") for kj in done]
    chosen = done[best]
    at_edge = edge
    return {
        "panel": spec.panel, "preset": spec.preset, "spec_hash": spec.spec_hash(),
        "optimizer": optimizer, "algorithm": opt.algorithm, "schedule": opt.schedule,
        "fixed": dict(opt.fixed), "seed": t.seed, "budget_epochs": t.budget_epochs,
        "criterion": t.criterion,
        "initial_grid": {"lr": list(opt.lr.values()),
                         "momentum": None if opt.momentum is None else list(opt.momentum.values())},
        "final_grid": {"lr": [opt.lr.value(q) for q in lr_ks],
                       "momentum": None if opt.momentum is None
                       else [opt.momentum.value(q) for q in mom_ks]},
        "widenings": widenings, "widening_rounds": rounds, "max_widenings": t.max_widenings,
        "points": [done[kj] for kj in keys],
        "chosen": chosen["hyper"], "chosen_criterion": chosen["criterion"],
        "at_edge": at_edge, "flagged": bool(at_edge),
        "wall_seconds": sum(p["wall_seconds"] for p in done.values()),
        "machine": machines[0], "worker_pids": sorted({m["pid"] for m in machines}),
    }
