"""The results store: JSON files under ``<results>/<panel>/<preset>/``, written atomically.

* ``<optimizer>-seed<k>.json``: one run (its curves, the full spec and its hash, the seed, the
  chosen hyper-parameters with their tuning record, and provenance: git commit, package versions,
  thread count, ``OPENBLAS_CORETYPE`` as set or ``"unset"``, CPU model, wall time);
* ``<optimizer>-seed<k>-runnerup.json``: a run of the runner-up setting of a search under a
  protocol (``role: "runner_up"`` in the record; the chosen runs have ``role: "chosen"``, or none
  in files written before roles existed);
* ``tune-<optimizer>.json``: the tuning record of one optimizer.

The default folder is ``results/`` in the repository root when the package runs from a checkout
(``./results`` otherwise), overridden by ``$ADAMLAB_RESULTS`` or ``--results DIR``. Checkpoints go
to ``<results>/.checkpoints/`` (gitignored), or ``$ADAMLAB_CHECKPOINTS``.

:func:`load_results` refuses stale files (a spec hash other than the current spec's), so a
notebook never plots results of an experiment that is no longer the one its text describes.

Every file read back is validated (:func:`result_problem`, :func:`tuning_problem`): valid JSON,
the keys and types the runner writes, finite numbers where the runner never writes anything else
(a diverged run's last evaluation may be null), and curves as long as the epochs they state. One
function, :func:`result_state`, says whether a result is fresh, for ``adamlab run`` (which skips
fresh results) and for ``adamlab list`` alike: a result is fresh when it is valid, made under the
current spec and at the hyper-parameters the current tuning record chooses (a runner-up run: at
the record's ``runner_up``).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from .grid import log_problem
from .provenance import code_info, repo_root, versions
from .runner import atomic_write_json, remove_stale_temps, run_name
from .specs import SCHEDULES, PanelSpec, get_spec, PANELS, presets_of

__all__ = ["results_dir", "checkpoints_dir", "result_path", "tuning_path", "write_result",
           "write_tuning", "load_tuning", "load_results", "StaleResultError", "scan",
           "check_writable", "ResultsDirError", "seed_band", "InvalidResultError",
           "result_state", "result_problem", "tuning_problem", "read_record"]


class StaleResultError(RuntimeError):
    """A result file made under another spec (its hash differs from the current spec's)."""


class InvalidResultError(RuntimeError):
    """A result or tuning file that is not what the engine writes (truncated, edited, corrupt)."""


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


def result_path(results: Path, spec: PanelSpec, optimizer: str, seed: int,
                role: str = "chosen") -> Path:
    return panel_dir(results, spec) / f"{run_name(optimizer, seed, role)}.json"


def setting_of(tuning: dict | None, role: str = "chosen") -> dict | None:
    """The hyper-parameters a tuning record gives the runs of ``role`` (None: no record)."""
    if tuning is None:
        return None
    return tuning["chosen"] if role == "chosen" else tuning.get("runner_up")


def runs_of(spec: PanelSpec, seeds=None) -> list[tuple[int, str]]:
    """``(seed, role)`` of every run of an optimizer of ``spec`` (within ``seeds``, if given): the
    chosen setting on every seed, the runner-up on the protocol's runner-up seeds."""
    want = spec.seeds if seeds is None else seeds
    return ([(s, "chosen") for s in want]
            + [(s, "runner_up") for s in spec.runner_up_seeds() if s in want])


def tuning_path(results: Path, spec: PanelSpec, optimizer: str) -> Path:
    return panel_dir(results, spec) / f"tune-{optimizer}.json"


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it, or raise :class:`ResultsDirError`; then
    remove the temporary files that killed processes left there."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ResultsDirError(f"the results folder {folder} is not writable ({e.strerror or e}); "
                              "choose another with --results DIR or $ADAMLAB_RESULTS") from None
    remove_stale_temps(folder)


# ----------------------------------------------------------------------------- validation


def _run_fix(spec: PanelSpec) -> str:
    return f"delete it or rerun `adamlab run {spec.panel} --preset {spec.preset}`"


def _tune_fix(spec: PanelSpec, optimizer: str) -> str:
    return (f"delete it or rerun `adamlab tune {spec.panel} --preset {spec.preset} "
            f"--optimizer {optimizer}`")


def read_record(path: Path, fix: str) -> dict:
    """The JSON object in ``path``, or :class:`InvalidResultError` naming the file, the problem
    and ``fix``. NaN and infinities are read as floats, for the schema checks to name."""
    path = Path(path)
    try:
        rec = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise InvalidResultError(f"{path} cannot be read ({e.strerror or e}); {fix}") from None
    except UnicodeDecodeError:
        raise InvalidResultError(f"{path} is not UTF-8 text (corrupt?): {fix}") from None
    except ValueError as e:
        raise InvalidResultError(f"{path} is not valid JSON (truncated?): {e}; {fix}") from None
    if not isinstance(rec, dict):
        raise InvalidResultError(f"{path} holds a JSON {type(rec).__name__}, not an object: {fix}")
    return rec


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _bad_number(key: str, i, v, allow_null: bool = False) -> str | None:
    if v is None and allow_null:
        return None
    where = key if i is None else f"{key}[{i}]"
    if _is_finite(v):
        return None
    if isinstance(v, float):
        return f"{where} is {v}, not a finite number"
    return f"{where} is {json.dumps(v)[:40]}, not a number"


def _numbers(rec: dict, key: str, allow_null: bool = False) -> str | None:
    v = rec[key]
    if not isinstance(v, list):
        return f"{key} is not a list"
    for i, x in enumerate(v):
        bad = _bad_number(key, i, x, allow_null)
        if bad:
            return bad
    return None


def _hyper_problem(key: str, hyper) -> str | None:
    if not isinstance(hyper, dict) or "lr" not in hyper:
        return f"{key} is not a mapping with a step size lr"
    if "schedule" in hyper and hyper["schedule"] not in SCHEDULES:
        return f"{key}.schedule is {str(hyper['schedule'])[:40]!r}, not one of {list(SCHEDULES)}"
    for k, v in hyper.items():
        if k == "schedule":
            continue
        bad = _bad_number(f"{key}.{k}", None, v)
        if bad:
            return bad
    return None


_RESULT_KEYS = ("optimizer", "seed", "spec_hash", "hyper", "epochs", "completed_epochs",
                "train_cost", "full_cost_epochs", "full_cost", "full_penalty", "epoch_seconds",
                "eval_seconds", "diverged", "resumed_at_epochs", "steps_per_epoch", "n_train",
                "wall_seconds")


def result_problem(rec: dict, spec: PanelSpec, name: str | None = None) -> str | None:
    """What is wrong with the result record ``rec`` of ``spec`` (None if nothing), checked against
    what :func:`~adamlab.experiments.runner.train_run` writes; ``name``: its file name.

    A run that diverged keeps the epochs it completed: ``completed_epochs`` is the epoch it
    diverged in, minus one when that happened in a step, and its last full cost may be null.
    """
    missing = [k for k in _RESULT_KEYS if k not in rec]
    if missing:
        return f"it lacks {', '.join(missing)}"
    opt, seed = rec["optimizer"], rec["seed"]
    if not isinstance(opt, str) or opt not in [o.name for o in spec.optimizers]:
        return f"optimizer {opt!r} is not one of the panel's"
    if not _is_int(seed) or seed not in spec.seeds:
        return f"seed {seed!r} is not one of the preset's {list(spec.seeds)}"
    role = rec.get("role", "chosen")
    if role not in ("chosen", "runner_up"):
        return f"role is {str(role)[:40]!r}, not chosen or runner_up"
    if name is not None and name != f"{run_name(opt, seed, role)}.json":
        what = "the runner-up run" if role == "runner_up" else "the run"
        return f"it holds {what} of {opt} seed {seed}, not the one its name says"
    for key in ("epochs", "completed_epochs", "steps_per_epoch", "n_train"):
        if not _is_int(rec[key]):
            return f"{key} is {rec[key]!r}, not an integer"
    epochs, done = rec["epochs"], rec["completed_epochs"]
    if epochs != spec.epochs_of(seed):
        return f"it states {epochs} epochs, the spec {spec.epochs_of(seed)} for seed {seed}"
    if rec["steps_per_epoch"] != -(-rec["n_train"] // spec.batch_size):
        return (f"steps_per_epoch is {rec['steps_per_epoch']}, but {rec['n_train']} examples "
                f"make {-(-rec['n_train'] // spec.batch_size)} minibatches")
    bad = (_hyper_problem("hyper", rec["hyper"]) or _numbers(rec, "train_cost")
           or _numbers(rec, "epoch_seconds") or _numbers(rec, "eval_seconds")
           or _numbers(rec, "full_cost", allow_null=True)
           or _numbers(rec, "full_penalty", allow_null=True)
           or _bad_number("wall_seconds", None, rec["wall_seconds"]))
    if bad:
        return bad
    div = rec["diverged"]
    if div is None:
        want = epochs
    elif (isinstance(div, dict) and _is_int(div.get("epoch")) and 1 <= div["epoch"] <= epochs
          and (div.get("step") is None or _is_int(div.get("step")))
          and isinstance(div.get("reason"), str)):
        want = div["epoch"] - (div["step"] is not None)
    else:
        return f"diverged is {json.dumps(div)[:60]}, not null or {{epoch, step, reason}}"
    if done != want:
        return (f"completed_epochs is {done}, but a run that "
                + ("did not diverge" if div is None else f"diverged in epoch {div['epoch']}")
                + f" of {epochs} completes {want}")
    for key in ("train_cost", "epoch_seconds"):
        if len(rec[key]) != done:
            return f"{key} has {len(rec[key])} entries, not one per completed epoch ({done})"
    evals = [e for e in spec.eval_epochs(epochs) if e <= done]
    if rec["full_cost_epochs"] != evals:
        return f"full_cost_epochs is {str(rec['full_cost_epochs'])[:60]}, expected {evals}"
    for key in ("full_cost", "full_penalty", "eval_seconds"):
        if len(rec[key]) != len(evals):
            return (f"{key} has {len(rec[key])} entries, not one per evaluation "
                    f"({len(evals)}, epoch 0 included)")
    for key in ("full_cost", "full_penalty"):
        nulls = [i for i, v in enumerate(rec[key]) if v is None]
        if nulls and (div is None or nulls != [len(evals) - 1]):
            return (f"{key}[{nulls[0]}] is null, which only the last evaluation of a diverged "
                    "run may be")
    if not isinstance(rec["resumed_at_epochs"], list) or not all(
            _is_int(e) and 0 <= e < epochs for e in rec["resumed_at_epochs"]):
        return "resumed_at_epochs is not a list of epochs"
    return log_problem(rec, spec)  # a GridSpec's step log


def tuning_problem(rec: dict, spec: PanelSpec, optimizer: str) -> str | None:
    """What is wrong with the tuning record ``rec`` of ``optimizer`` (None if nothing)."""
    missing = [k for k in ("optimizer", "spec_hash", "chosen", "chosen_criterion", "points",
                           "flagged", "at_edge") if k not in rec]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if rec["optimizer"] != optimizer:
        return f"it holds the search of {rec['optimizer']!r}, not of {optimizer!r}"
    if not isinstance(rec["points"], list) or not rec["points"]:
        return "points is not a non-empty list"
    if not isinstance(rec["flagged"], bool) or not isinstance(rec["at_edge"], dict):
        return "flagged or at_edge has the wrong type"
    if spec.protocol is not None:
        missing = [k for k in ("runner_up", "runner_up_criterion", "rungs") if k not in rec]
        if missing:
            return f"it lacks {', '.join(missing)}, which a search under a protocol records"
        if rec["runner_up"] is not None:
            bad = (_hyper_problem("runner_up", rec["runner_up"])
                   or _bad_number("runner_up_criterion", None, rec["runner_up_criterion"]))
            if bad:
                return bad
    return (_hyper_problem("chosen", rec["chosen"])
            or _bad_number("chosen_criterion", None, rec["chosen_criterion"]))


def result_state(path: Path, spec: PanelSpec, chosen: dict | None = None) -> tuple[str, str]:
    """``(state, why)`` of the result file ``path`` of ``spec``: ``"missing"``, ``"invalid"``
    (``why`` names the file, the problem and the fix), ``"stale"`` (another spec, or made at
    hyper-parameters other than ``chosen``, the current tuning record's choice, when given; for a
    runner-up file, :func:`setting_of` its record with ``"runner_up"``) or ``"fresh"``.
    ``adamlab run`` reruns every result that is not fresh."""
    return _check(Path(path), spec, chosen)[:2]


def _check(path: Path, spec: PanelSpec, chosen) -> tuple[str, str, dict | None]:
    """:func:`result_state` and the record (None unless it is fresh)."""
    if not path.is_file():
        return "missing", f"{path} does not exist", None
    try:
        rec = read_record(path, _run_fix(spec))
    except InvalidResultError as e:
        return "invalid", str(e), None
    h = spec.spec_hash()
    if rec.get("spec_hash") != h:
        theirs = str(rec.get("spec_hash"))[:12]
        return "stale", f"{path} (spec hash {theirs}, current {h[:12]})", None
    problem = result_problem(rec, spec, path.name)
    if problem:
        return "invalid", f"{path} is not a valid result: {problem}; {_run_fix(spec)}", None
    if chosen is not None and rec["hyper"] != chosen:
        return "stale", (f"{path} (made at {rec['hyper']}, but the tuning record now chooses "
                         f"{chosen})"), None
    return "fresh", str(path), rec


def _provenance() -> dict:
    return {**code_info(), "versions": versions(),
            "written_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_tuning(results: Path, spec: PanelSpec, record: dict) -> Path:
    path = tuning_path(results, spec, record["optimizer"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {**record, "spec": spec.to_dict(), "provenance": _provenance()})
    return path


def load_tuning(results, spec: PanelSpec, optimizer: str, *, strict: bool = False) -> dict | None:
    """The tuning record of ``optimizer``, or None if there is none, or it is stale or invalid
    (so that ``adamlab run`` searches again and rewrites it).

    With ``strict=True`` (for the notebooks) a missing record raises ``FileNotFoundError``, a
    stale one :class:`StaleResultError` and an invalid one :class:`InvalidResultError`.
    """
    path = tuning_path(results_dir(results), spec, optimizer)
    if not path.is_file():
        if strict:
            raise FileNotFoundError(f"no tuning record {path}. Run: adamlab tune {spec.panel} "
                                    f"--preset {spec.preset}")
        return None
    try:
        rec = _read_tuning(path, spec, optimizer)
    except InvalidResultError:
        if strict:
            raise
        return None
    if rec.get("spec_hash") == spec.spec_hash():
        return rec
    if strict:
        raise StaleResultError(f"stale tuning record {path} (spec hash "
                               f"{str(rec.get('spec_hash'))[:12]}, current {spec.spec_hash()[:12]}"
                               f"). Rerun: adamlab tune {spec.panel} --preset {spec.preset}")
    return None


def _read_tuning(path: Path, spec: PanelSpec, optimizer: str) -> dict:
    """The tuning record in ``path``; :class:`InvalidResultError` if it is not valid. The schema
    is checked only under the current spec hash: a stale record is stale, whatever it holds."""
    rec = read_record(path, _tune_fix(spec, optimizer))
    problem = None if rec.get("spec_hash") != spec.spec_hash() \
        else tuning_problem(rec, spec, optimizer)
    if problem:
        raise InvalidResultError(f"{path} is not a valid tuning record: {problem}; "
                                 f"{_tune_fix(spec, optimizer)}")
    return rec


def write_result(results: Path, spec: PanelSpec, run: dict, tuning: dict | None) -> Path:
    """Write one run's record (from the worker) with the spec, tuning record and provenance."""
    path = result_path(results, spec, run["optimizer"], run["seed"], run.get("role", "chosen"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tune = None if tuning is None else {k: v for k, v in tuning.items()
                                        if k not in ("spec", "provenance")}
    rec = {**run, "spec": spec.to_dict(), "spec_hash": spec.spec_hash(), "tuning": tune,
           "provenance": _provenance()}
    atomic_write_json(path, rec)
    return path


def load_results(spec: PanelSpec, results=None, *, optimizers=None, seeds=None,
                 role: str = "chosen") -> dict:
    """``{(optimizer, seed): record}`` of every result file of ``spec``'s panel and preset
    (``role="runner_up"``: of the runner-up runs, over the protocol's runner-up seeds).

    Raises :class:`InvalidResultError` naming every file that is not a valid result,
    :class:`StaleResultError` naming every file whose spec hash is not the current spec's (or
    made at other hyper-parameters than the current tuning record chooses), and
    ``FileNotFoundError`` when a run of ``optimizers`` (default: all of the spec's) is missing.
    """
    root = results_dir(results)
    folder = panel_dir(root, spec)
    want = [o.name for o in spec.optimizers] if optimizers is None else list(optimizers)
    out, stale, missing, invalid = {}, [], [], []
    for name in want:
        tuned = load_tuning(root, spec, name)
        for seed, _ in [r for r in runs_of(spec, seeds) if r[1] == role]:
            path = result_path(root, spec, name, seed, role)
            state, why, rec = _check(path, spec, setting_of(tuned, role))
            if state == "missing":
                missing.append(path.name)
            elif state == "invalid":
                invalid.append(why)
            elif state == "stale":
                stale.append(why)
            else:
                out[(name, seed)] = rec
    if invalid:
        raise InvalidResultError("; ".join(invalid))
    if stale:
        raise StaleResultError("stale results, made under another spec of "
                               f"{spec.panel} ({spec.preset}): " + "; ".join(stale)
                               + f". Rerun: adamlab run {spec.panel} --preset {spec.preset}")
    if missing:
        raise FileNotFoundError(f"missing results in {folder}: {', '.join(missing)}. Run: "
                                f"adamlab run {spec.panel} --preset {spec.preset}")
    return out


def scan(results=None, specs=None) -> list[dict]:
    """One row per (panel, preset) (or per spec of ``specs``): how many of its runs have a
    result that is fresh, stale or invalid, and how many optimizers a fresh tuning record.
    ``invalid`` lists a line per invalid result or tuning file (the file, the problem, the fix);
    ``stale_files`` says why each stale result is stale."""
    root = results_dir(results)
    if specs is None:
        specs = [get_spec(panel, preset) for panel in PANELS for preset in presets_of(panel)]
    rows = []
    for spec in specs:
        counts = {"fresh": 0, "stale": 0, "invalid": 0, "missing": 0}
        runner_up = dict.fromkeys(counts, 0)
        invalid, stale, tuned = [], [], 0
        for o in spec.optimizers:
            rec = None
            path = tuning_path(root, spec, o.name)
            if path.is_file():
                try:
                    rec = _read_tuning(path, spec, o.name)
                except InvalidResultError as e:
                    invalid.append(str(e))
            fresh_tuning = rec is not None and rec.get("spec_hash") == spec.spec_hash()
            tuned += fresh_tuning
            for seed, role in runs_of(spec):
                state, why = result_state(result_path(root, spec, o.name, seed, role), spec,
                                          setting_of(rec, role) if fresh_tuning else None)
                counts[state] += 1
                runner_up[state] += role == "runner_up"
                if state == "invalid":
                    invalid.append(why)
                elif state == "stale":
                    stale.append(why)
        rows.append({"panel": spec.panel, "preset": spec.preset, "hash": spec.spec_hash()[:12],
                     "expected": len(spec.optimizers) * len(runs_of(spec)),
                     "fresh": counts["fresh"], "runner_up_fresh": runner_up["fresh"],
                     "runner_up_expected": len(spec.optimizers) * len(spec.runner_up_seeds()),
                     "stale": counts["stale"], "invalid": invalid,
                     "tuned": None if spec.tune is None else tuned,  # None: nothing to tune
                     "stale_files": stale,
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
