"""The results store: JSON files under ``<results>/<panel>/<preset>/``, written atomically.

* ``<optimizer>-seed<k>.json``: one run (its curves, the full spec and its hash, the seed, the
  chosen hyper-parameters with their tuning record, and provenance: git commit, package versions,
  thread count, ``OPENBLAS_CORETYPE`` as set or ``"unset"``, CPU model, wall time);
* ``tune-<optimizer>.json``: the tuning record of one optimizer.

The default folder is ``results/`` in the repository root when the package runs from a checkout
(``./results`` otherwise), overridden by ``$ADAMLAB_RESULTS`` or ``--results DIR``. Checkpoints go
to ``<results>/.checkpoints/`` (gitignored), or ``$ADAMLAB_CHECKPOINTS``.

:func:`load_results` refuses stale files (a spec hash other than the current spec's), so a
notebook never plots results of an experiment that is no longer the one its text describes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .provenance import code_info, repo_root, versions
from .runner import atomic_write_json
from .specs import PanelSpec, get_spec, PANELS, PRESETS

__all__ = ["results_dir", "checkpoints_dir", "result_path", "tuning_path", "write_result",
           "write_tuning", "load_tuning", "load_results", "StaleResultError", "scan",
           "check_writable", "ResultsDirError", "seed_band"]


class StaleResultError(RuntimeError):
    """A result file made under another spec (its hash differs from the current spec's)."""


class ResultsDirError(RuntimeError):
    """The results folder cannot be created or written."""


def results_dir(override=None) -> Path:
    if override is not None:
        return Path(override)
    env = os.environ.get("ADAMLAB_RESULTS", "").strip()
    if env:
        return Path(env)
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "results"


def checkpoints_dir(results: Path) -> Path:
    env = os.environ.get("ADAMLAB_CHECKPOINTS", "").strip()
    return Path(env) if env else Path(results) / ".checkpoints"


def panel_dir(results: Path, spec: PanelSpec) -> Path:
    return Path(results) / spec.panel / spec.preset


def result_path(results: Path, spec: PanelSpec, optimizer: str, seed: int) -> Path:
    return panel_dir(results, spec) / f"{optimizer}-seed{seed}.json"


def tuning_path(results: Path, spec: PanelSpec, optimizer: str) -> Path:
    return panel_dir(results, spec) / f"tune-{optimizer}.json"


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it, or raise :class:`ResultsDirError`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ResultsDirError(f"the results folder {folder} is not writable ({e.strerror or e}); "
                              "choose another with --results DIR or $ADAMLAB_RESULTS") from None


def _provenance() -> dict:
    return {**code_info(), "versions": versions(),
            "written_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_tuning(results: Path, spec: PanelSpec, record: dict) -> Path:
    path = tuning_path(results, spec, record["optimizer"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {**record, "spec": spec.to_dict(), "provenance": _provenance()})
    return path


def load_tuning(results, spec: PanelSpec, optimizer: str, *, strict: bool = False) -> dict | None:
    """The tuning record of ``optimizer``, or None if there is none or it is stale.

    With ``strict=True`` (for the notebooks) a missing record raises ``FileNotFoundError`` and a
    stale one :class:`StaleResultError`.
    """
    path = tuning_path(results_dir(results), spec, optimizer)
    if not path.is_file():
        if strict:
            raise FileNotFoundError(f"no tuning record {path}. Run: adamlab tune {spec.panel} "
                                    f"--preset {spec.preset}")
        return None
    rec = json.loads(path.read_text(encoding="utf-8"))
    if rec.get("spec_hash") == spec.spec_hash():
        return rec
    if strict:
        raise StaleResultError(f"stale tuning record {path} (spec hash "
                               f"{str(rec.get('spec_hash'))[:12]}, current {spec.spec_hash()[:12]}"
                               f"). Rerun: adamlab tune {spec.panel} --preset {spec.preset}")
    return None


def write_result(results: Path, spec: PanelSpec, run: dict, tuning: dict | None) -> Path:
    """Write one run's record (from the worker) with the spec, tuning record and provenance."""
    path = result_path(results, spec, run["optimizer"], run["seed"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tune = None if tuning is None else {k: v for k, v in tuning.items()
                                        if k not in ("spec", "provenance")}
    rec = {**run, "spec": spec.to_dict(), "spec_hash": spec.spec_hash(), "tuning": tune,
           "provenance": _provenance()}
    atomic_write_json(path, rec)
    return path


def load_results(spec: PanelSpec, results=None, *, optimizers=None, seeds=None) -> dict:
    """``{(optimizer, seed): record}`` of every result file of ``spec``'s panel and preset.

    Raises :class:`StaleResultError` naming every file whose spec hash is not the current spec's,
    and ``FileNotFoundError`` when a run of ``optimizers`` (default: all of the spec's) is missing.
    """
    folder = panel_dir(results_dir(results), spec)
    want = [o.name for o in spec.optimizers] if optimizers is None else list(optimizers)
    h = spec.spec_hash()
    out, stale, missing = {}, [], []
    for name in want:
        for seed in (spec.seeds if seeds is None else seeds):
            path = folder / f"{name}-seed{seed}.json"
            if not path.is_file():
                missing.append(path.name)
                continue
            rec = json.loads(path.read_text(encoding="utf-8"))
            if rec.get("spec_hash") != h:
                stale.append(f"{path} (spec hash {str(rec.get('spec_hash'))[:12]}, current {h[:12]})")
                continue
            out[(name, seed)] = rec
    if stale:
        raise StaleResultError("stale results, made under another spec of "
                               f"{spec.panel} ({spec.preset}): " + "; ".join(stale)
                               + f". Rerun: adamlab run {spec.panel} --preset {spec.preset}")
    if missing:
        raise FileNotFoundError(f"missing results in {folder}: {', '.join(missing)}. Run: "
                                f"adamlab run {spec.panel} --preset {spec.preset}")
    return out


def scan(results=None) -> list[dict]:
    """One row per (panel, preset): how many of its runs have a result, fresh or stale."""
    root = results_dir(results)
    rows = []
    for panel in PANELS:
        for preset in PRESETS:
            spec = get_spec(panel, preset)
            h = spec.spec_hash()
            fresh = stale = 0
            expected = len(spec.optimizers) * len(spec.seeds)
            for o in spec.optimizers:
                for seed in spec.seeds:
                    p = result_path(root, spec, o.name, seed)
                    if p.is_file():
                        try:
                            ok = json.loads(p.read_text(encoding="utf-8")).get("spec_hash") == h
                        except ValueError:
                            ok = False
                        fresh += ok
                        stale += not ok
            tuned = sum(load_tuning(root, spec, o.name) is not None for o in spec.optimizers)
            rows.append({"panel": panel, "preset": preset, "hash": h[:12], "expected": expected,
                         "fresh": fresh, "stale": stale, "tuned": tuned,
                         "optimizers": [o.name for o in spec.optimizers],
                         "epochs": spec.epochs, "seeds": list(spec.seeds)})
    return rows


def seed_band(records: dict, optimizer: str, key: str = "train_cost"):
    """Mean, min and max over seeds of the curve ``key`` of ``optimizer``, and the seed count.

    ``records`` is :func:`load_results`' dict. Curves are cut to the shortest among the seeds (a
    diverged seed, or seeds run over fewer epochs); returns NumPy arrays ``(mean, lo, hi)`` and n.
    """
    import numpy as np

    runs = [r for (name, _), r in sorted(records.items()) if name == optimizer]
    if not runs:
        raise KeyError(f"no results of {optimizer!r}")
    n = min(len(r[key]) for r in runs)
    a = np.array([[np.nan if v is None else v for v in r[key][:n]] for r in runs], dtype=float)
    return a.mean(axis=0), a.min(axis=0), a.max(axis=0), len(runs)
